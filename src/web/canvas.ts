/**
 * RGB images as canvas pixels: ImageBitmaps made in the worker (and
 * transferred to the page, which only draws them) and PNG files.
 * @module
 */
import type { RgbImage } from "../engine/image/types.ts";

/** The image as canvas pixels (RGBA, opaque). */
function imageData(img: RgbImage): ImageData {
  const n = img.width * img.height;
  const rgba = new Uint8ClampedArray(n * 4);
  for (let i = 0; i < n; i++) {
    rgba[i * 4] = img.data[i * 3];
    rgba[i * 4 + 1] = img.data[i * 3 + 1];
    rgba[i * 4 + 2] = img.data[i * 3 + 2];
    rgba[i * 4 + 3] = 255;
  }
  return new ImageData(rgba, img.width, img.height);
}

/** The image as an ImageBitmap (to transfer to the page). */
export function toBitmap(img: RgbImage): Promise<ImageBitmap> {
  return createImageBitmap(imageData(img), {
    premultiplyAlpha: "none",
    colorSpaceConversion: "none",
  });
}

/** The image as PNG bytes (opaque pixels, written exactly). */
export async function pngBytes(img: RgbImage): Promise<Uint8Array> {
  const canvas = new OffscreenCanvas(img.width, img.height);
  canvas.getContext("2d")!.putImageData(imageData(img), 0, 0);
  const blob = await canvas.convertToBlob({ type: "image/png" });
  return new Uint8Array(await blob.arrayBuffer());
}

/** Resizes `canvas` to the bitmap and draws it. */
export function drawBitmap(canvas: HTMLCanvasElement, bmp: ImageBitmap): void {
  if (canvas.width !== bmp.width) canvas.width = bmp.width;
  if (canvas.height !== bmp.height) canvas.height = bmp.height;
  canvas.getContext("2d")!.drawImage(bmp, 0, 0);
}
