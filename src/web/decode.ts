/**
 * Image files decoded by the browser's own decoders: `createImageBitmap` with
 * no colour-space conversion and no premultiplied alpha, the pixels read from
 * a 2D canvas and flattened onto white as the CLI does, so an opaque PNG gives
 * exactly the CLI's pixels.
 * @module
 */
import { UserError } from "../engine/errors.ts";
import { rgbaToRgbOnWhite } from "../engine/image/alpha.ts";
import { DEFAULT_MAX_PIXELS, type RgbImage } from "../engine/image/types.ts";

/** The file's bitmap, or a one-line {@link UserError} naming it. */
async function bitmap(file: Blob, name: string): Promise<ImageBitmap> {
  if (file.size === 0) throw new UserError(`${name}: file is empty (0 bytes)`);
  try {
    return await createImageBitmap(file, {
      colorSpaceConversion: "none",
      premultiplyAlpha: "none",
      imageOrientation: "from-image",
    });
  } catch {
    throw new UserError(
      `${name}: not an image this browser can decode (PNG or JPEG, say)`,
    );
  }
}

/** The bitmap's RGBA bytes, read through a canvas of its size. */
function rgbaOf(bmp: ImageBitmap): Uint8ClampedArray {
  const canvas = new OffscreenCanvas(bmp.width, bmp.height);
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  if (!ctx) throw new Error("no 2D canvas context");
  ctx.drawImage(bmp, 0, 0);
  return ctx.getImageData(0, 0, bmp.width, bmp.height, { colorSpace: "srgb" })
    .data;
}

/**
 * Decodes an image file to RGB, transparent pixels on white.
 * @param file the file (or any blob)
 * @param name what error messages call it (the file's name)
 * @throws {UserError} for an empty, undecodable or oversized file
 */
export async function decodeImageFile(
  file: Blob,
  name: string,
): Promise<RgbImage> {
  const bmp = await bitmap(file, name);
  try {
    const { width, height } = bmp;
    if (width * height > DEFAULT_MAX_PIXELS) {
      throw new UserError(
        `${name}: image is ${width}x${height}, more than the limit of ${DEFAULT_MAX_PIXELS} pixels`,
      );
    }
    return {
      width,
      height,
      data: rgbaToRgbOnWhite(rgbaOf(bmp), width * height),
    };
  } finally {
    bmp.close();
  }
}
