/**
 * Encoding {@link RgbImage}s to PNG / JPEG and writing them atomically.
 * @module
 */
import { Image } from "imagescript";
import { UserError } from "../../engine/errors.ts";
import { insertPngText } from "../../engine/image/png_text.ts";
import type { RgbImage } from "../../engine/image/types.ts";

/** Output formats {@link encodeImage} produces. */
export type OutputFormat = "png" | "jpeg";

/** RGB → opaque RGBA ImageScript image. */
function toImageScript(img: RgbImage): Image {
  const out = new Image(img.width, img.height);
  const bmp = out.bitmap, src = img.data, n = img.width * img.height;
  for (let i = 0; i < n; i++) {
    bmp[i * 4] = src[i * 3];
    bmp[i * 4 + 1] = src[i * 3 + 1];
    bmp[i * 4 + 2] = src[i * 3 + 2];
    bmp[i * 4 + 3] = 255;
  }
  return out;
}

/** What a written file carries besides its pixels. */
export interface WriteOptions {
  /** PNG `tEXt` chunks, keyword → Latin-1 text (ignored for JPEG). */
  text?: Record<string, string>;
}

/**
 * Encodes an image as PNG (lossless) or JPEG.
 * @param img image to encode
 * @param format `"png"` or `"jpeg"`
 * @param quality JPEG quality 1..100 (ignored for PNG)
 * @param options tEXt chunks of a PNG
 */
export async function encodeImage(
  img: RgbImage,
  format: OutputFormat,
  quality = 95,
  options: WriteOptions = {},
): Promise<Uint8Array> {
  const im = toImageScript(img);
  if (format === "png") {
    let png: Uint8Array = await im.encode(6);
    for (const [k, v] of Object.entries(options.text ?? {})) png = insertPngText(png, k, v);
    return png;
  }
  const q = Math.min(100, Math.max(1, Math.round(quality)));
  return await im.encodeJPEG(q as Parameters<Image["encodeJPEG"]>[0]);
}

/**
 * Output format from a file name's extension (.png, .jpg, .jpeg; any case).
 * @param path output path
 * @throws {UserError} for any other extension
 */
export function formatForPath(path: string): OutputFormat {
  const m = /\.([^./\\]+)$/.exec(path);
  const ext = m ? m[1].toLowerCase() : "";
  if (ext === "png") return "png";
  if (ext === "jpg" || ext === "jpeg") return "jpeg";
  throw new UserError(`${path}: unsupported output extension (use .png, .jpg or .jpeg)`);
}

/** Directory part of a path ("." when there is none). */
function dirOf(path: string): string {
  const i = Math.max(path.lastIndexOf("/"), path.lastIndexOf("\\"));
  return i < 0 ? "." : i === 0 ? path.slice(0, 1) : path.slice(0, i);
}

/** One line describing why a write failed. */
function writeFailure(path: string, e: unknown): UserError {
  const why = e instanceof Error ? e.message.split("\n")[0] : String(e);
  return new UserError(`${path}: cannot write file (${why})`);
}

/**
 * Encodes `img` by the extension of `path` (JPEG at quality 95) and writes it
 * atomically: a temporary file in the same directory, then a rename, so a
 * reader never sees a partial file and a failed write leaves nothing behind.
 * @param path destination (.png, .jpg or .jpeg)
 * @param img image to write
 * @param options tEXt chunks of a PNG
 * @throws {UserError} for a bad extension or an unwritable destination
 */
export async function writeImage(
  path: string,
  img: RgbImage,
  options: WriteOptions = {},
): Promise<void> {
  const bytes = await encodeImage(img, formatForPath(path), 95, options);
  let tmp: string;
  try {
    tmp = await Deno.makeTempFile({ dir: dirOf(path), prefix: ".stylize-", suffix: ".tmp" });
  } catch (e) {
    throw writeFailure(path, e);
  }
  try {
    await Deno.writeFile(tmp, bytes);
    // makeTempFile creates 0600; give the result the usual permissions of a new file.
    if (Deno.build.os !== "windows") await Deno.chmod(tmp, 0o644);
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw writeFailure(path, e);
  }
}
