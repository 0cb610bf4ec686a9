/**
 * Reading and decoding PNG / JPEG files into {@link RgbImage}, with one-line
 * {@link UserError}s for everything a user's file can get wrong.
 * @module
 */
import { Image } from "imagescript";
import { UserError } from "../../engine/errors.ts";
import { jpegHasEnd, jpegOrientation, readHeader } from "./header.ts";
import { DEFAULT_MAX_PIXELS, type RgbImage } from "../../engine/image/types.ts";
import { rgbaToRgbOnWhite } from "../../engine/image/alpha.ts";
import { applyOrientation } from "../../engine/image/orient.ts";

/** Options for {@link readImage} and {@link decodeImage}. */
export interface DecodeOptions {
  /** Refuse images with more pixels than this (default {@link DEFAULT_MAX_PIXELS}). */
  maxPixels?: number;
}

/** First line of an error's message, for embedding in a one-line UserError. */
function firstLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return msg.split("\n")[0].trim() || "unknown error";
}

/** Throws a UserError when `width × height` exceeds the limit. */
function checkPixels(name: string, width: number, height: number, maxPixels: number): void {
  if (width * height > maxPixels) {
    throw new UserError(
      `${name}: image is ${width}x${height} (${
        width * height
      } pixels), more than the limit of ${maxPixels} pixels`,
    );
  }
}

/** Header checks that need no decoding: format, dimensions, pixel limit, JPEG end. */
function precheck(bytes: Uint8Array, name: string, maxPixels: number): void {
  if (bytes.length === 0) throw new UserError(`${name}: file is empty (0 bytes)`);
  const head = readHeader(bytes);
  if (head === null) throw new UserError(`${name}: not a PNG or JPEG image`);
  const { format, width, height } = head;
  if (format === "png" && (width === undefined || height === undefined)) {
    throw new UserError(`${name}: corrupt PNG (no IHDR header)`);
  }
  if (width === 0 || (format === "png" && height === 0)) {
    throw new UserError(`${name}: corrupt ${format.toUpperCase()} (zero image size in header)`);
  }
  if (width !== undefined && height !== undefined) checkPixels(name, width, height, maxPixels);
  if (format === "jpeg" && !jpegHasEnd(bytes)) {
    throw new UserError(`${name}: truncated or corrupt JPEG (no end-of-image marker)`);
  }
}

/**
 * Decodes PNG (RGB, RGBA, grayscale, grayscale+alpha, palette) or JPEG bytes
 * to RGB. Transparent pixels are composited on white; a JPEG is turned
 * upright by its EXIF orientation, as browsers show it. Every failure is a
 * one-line {@link UserError} that starts with `name`.
 * @param bytes the whole file
 * @param name file name or path used in error messages
 * @param options pixel limit
 */
export async function decodeImage(
  bytes: Uint8Array,
  name: string,
  options: DecodeOptions = {},
): Promise<RgbImage> {
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  precheck(bytes, name, maxPixels);
  const kind = readHeader(bytes)!.format.toUpperCase();
  let img: Image;
  try {
    img = await Image.decode(bytes) as Image;
  } catch (e) {
    throw new UserError(`${name}: truncated or corrupt ${kind} (${firstLine(e)})`);
  }
  const { width, height } = img;
  if (!(width >= 1 && height >= 1) || img.bitmap.length < width * height * 4) {
    throw new UserError(`${name}: corrupt ${kind} (decoder returned no pixels)`);
  }
  checkPixels(name, width, height, maxPixels);
  const rgb = { width, height, data: rgbaToRgbOnWhite(img.bitmap, width * height) };
  return kind === "JPEG" ? applyOrientation(rgb, jpegOrientation(bytes)) : rgb;
}

/**
 * Reads and decodes a PNG or JPEG file (see {@link decodeImage}). A missing,
 * unreadable, empty, non-image, corrupt or oversized file is a one-line
 * {@link UserError} naming the path.
 * @param path file to read
 * @param options pixel limit
 */
export async function readImage(path: string, options: DecodeOptions = {}): Promise<RgbImage> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new UserError(`${path}: no such file`);
    if (e instanceof Deno.errors.IsADirectory) throw new UserError(`${path}: is a directory`);
    throw new UserError(`${path}: cannot read file (${firstLine(e)})`);
  }
  return await decodeImage(bytes, path, options);
}
