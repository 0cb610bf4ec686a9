/** An 8-bit RGB image, channels interleaved, rows top to bottom. */
export interface RgbImage {
  /** Width in pixels (≥ 1). */
  width: number;
  /** Height in pixels (≥ 1). */
  height: number;
  /** `width * height * 3` bytes: R, G, B of each pixel, row-major. */
  data: Uint8Array;
}

/**
 * The most pixels an image file may decode to, the CLI's and the page's
 * default (100 megapixels ≈ 400 MB of RGBA while decoding).
 */
export const DEFAULT_MAX_PIXELS = 100_000_000;

/** A dense float32 tensor with its shape (NCHW for images). */
export interface Tensor {
  /** Dimensions, outermost first, e.g. `[1, 3, H, W]`. */
  shape: number[];
  /** Row-major values; length is the product of `shape`. */
  data: Float32Array;
}

/**
 * A blank RGB image filled with one colour.
 * @param width width in pixels
 * @param height height in pixels
 * @param fill byte written to every channel (255 = white)
 */
export function newImage(width: number, height: number, fill = 0): RgbImage {
  const data = new Uint8Array(width * height * 3);
  if (fill !== 0) data.fill(fill);
  return { width, height, data };
}
