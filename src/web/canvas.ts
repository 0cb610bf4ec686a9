/**
 * RGB images onto canvases and into PNG files.
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

/** Resizes `canvas` to the image and draws it. */
export function drawImage(canvas: HTMLCanvasElement, img: RgbImage): void {
  if (canvas.width !== img.width) canvas.width = img.width;
  if (canvas.height !== img.height) canvas.height = img.height;
  canvas.getContext("2d")!.putImageData(imageData(img), 0, 0);
}

/** The image as a PNG file (opaque pixels, written exactly). */
export function pngBlob(img: RgbImage): Promise<Blob> {
  const canvas = new OffscreenCanvas(img.width, img.height);
  canvas.getContext("2d")!.putImageData(imageData(img), 0, 0);
  return canvas.convertToBlob({ type: "image/png" });
}
