/**
 * Masks of spatial control from images, as reference.py's `load_mask` reads
 * them: the image's luminance (Pillow's `convert("L")` of RGB,
 * (19595·R + 38470·G + 7471·B + 2¹⁵) >> 16), resized with Pillow's bicubic
 * ({@link resize}, exact), divided by 255: values 0..1, soft edges kept.
 * @module
 */
import { resize } from "./resize.ts";
import type { RgbImage, Tensor } from "./types.ts";

/** The image's 8-bit luminance as a gray RGB image (R = G = B = L). */
export function luminance(img: RgbImage): RgbImage {
  const n = img.width * img.height;
  const out = new Uint8Array(3 * n);
  for (let i = 0; i < n; i++) {
    const [r, g, b] = [img.data[3 * i], img.data[3 * i + 1], img.data[3 * i + 2]];
    const l = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
    out[3 * i] = out[3 * i + 1] = out[3 * i + 2] = l;
  }
  return { width: img.width, height: img.height, data: out };
}

/** A mask image as the loss takes it: [1, 1, h, w], its luminance resized to w×h, / 255. */
export function maskTensor(img: RgbImage, w: number, h: number): Tensor {
  const gray = resize(luminance(img), w, h);
  const data = new Float32Array(w * h);
  for (let i = 0; i < w * h; i++) data[i] = gray.data[3 * i] / 255;
  return { shape: [1, 1, h, w], data };
}
