/**
 * Conversion between RGB bytes and the network's input layout: NCHW float32,
 * BGR channel order, 0..255 with the Caffe mean removed (reference.py's
 * `load_image` / `to_rgb_uint8`).
 * @module
 */
import type { RgbImage, Tensor } from "./types.ts";

/** Per-channel mean (B, G, R) subtracted from 0..255 pixel values. */
export const MEAN_BGR: readonly [number, number, number] = [104.006, 116.669, 122.679];

/** The means as float32, as torch holds them. */
const MEAN_F32 = MEAN_BGR.map(Math.fround);

/**
 * Torch's `round()`: nearest integer, ties to even.
 * @param x value to round
 */
function roundTiesEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Image → `[1, 3, H, W]` float32 tensor: channel 0 is blue, values are
 * `pixel - MEAN_BGR[c]` (computed in float32 like torch).
 * @param img source image
 */
export function toTensor(img: RgbImage): Tensor {
  const { width, height, data } = img;
  const plane = width * height;
  const out = new Float32Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    const src = 2 - c, base = c * plane, mean = MEAN_F32[c];
    for (let i = 0; i < plane; i++) out[base + i] = data[i * 3 + src] - mean;
  }
  return { shape: [1, 3, height, width], data: out };
}

/** Checks that `t` is a `[1, 3, H, W]` tensor with matching data length. */
function checkShape(t: Tensor): [number, number] {
  const [n, c, h, w] = t.shape;
  const ok = t.shape.length === 4 && n === 1 && c === 3 && h >= 1 && w >= 1 &&
    t.data.length === 3 * h * w;
  if (!ok) throw new RangeError(`fromTensor: expected shape [1,3,H,W], got [${t.shape}]`);
  return [h, w];
}

/**
 * `[1, 3, H, W]` BGR mean-removed tensor → image: adds `MEAN_BGR` (float32),
 * swaps to RGB, clamps to 0..255 and rounds half to even, like the
 * reference's `to_rgb_uint8`. NaN becomes 0.
 * @param t tensor as produced by {@link toTensor} or the optimiser
 */
export function fromTensor(t: Tensor): RgbImage {
  const [height, width] = checkShape(t);
  const plane = width * height;
  const data = new Uint8Array(plane * 3);
  for (let c = 0; c < 3; c++) {
    const dst = 2 - c, base = c * plane, mean = MEAN_F32[c];
    for (let i = 0; i < plane; i++) {
      const v = Math.fround(t.data[base + i] + mean);
      data[i * 3 + dst] = v > 255 ? 255 : v > 0 ? roundTiesEven(v) : 0;
    }
  }
  return { width, height, data };
}
