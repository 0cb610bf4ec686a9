/**
 * Bicubic resampling that reproduces Pillow's `Image.resize(size, Image.BICUBIC)`
 * (libImaging/Resample.c, Pillow ≥ 7): a separable convolution whose support
 * grows with the downscale factor (antialiasing), horizontal pass first, each
 * pass rounded and clipped to uint8 with 22-bit fixed-point coefficients.
 * @module
 */
import type { RgbImage } from "./types.ts";

/** Fixed-point precision Pillow uses for 8-bit images: 32 - 8 - 2. */
const PRECISION_BITS = 22;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);
/** Support radius of the bicubic kernel at scale 1. */
const BICUBIC_SUPPORT = 2.0;

/** Pillow's bicubic kernel with a = -0.5. */
function bicubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** Per-output-pixel source window and fixed-point weights for one axis. */
interface Coeffs {
  /** Kernel slots per output pixel. */
  ksize: number;
  /** For output i: first source index at `2i`, count at `2i+1`. */
  bounds: Int32Array;
  /** `outSize * ksize` integer weights scaled by 2^22. */
  weights: Int32Array;
}

/** Rounds a normalised weight to fixed point exactly as Pillow does (away from zero). */
function toFixed(w: number): number {
  return w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
}

/** Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for one axis. */
function precompute(inSize: number, outSize: number): Coeffs {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = BICUBIC_SUPPORT * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const weights = new Int32Array(outSize * ksize);
  const k = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const count = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let ww = 0;
    for (let x = 0; x < count; x++) {
      k[x] = bicubic((x + xmin - center + 0.5) * ss);
      ww += k[x];
    }
    for (let x = 0; x < count; x++) {
      weights[xx * ksize + x] = toFixed(ww !== 0 ? k[x] / ww : k[x]);
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = count;
  }
  return { ksize, bounds, weights };
}

/** Pillow's `clip8`: drop the fixed-point fraction and clamp to 0..255. */
function clip8(v: number): number {
  if (v >= ONE * 256) return 255;
  if (v <= 0) return 0;
  return Math.floor(v / ONE);
}

/** Resamples along x: `src` is `inW × h`, result is `outW × h`. */
function horizontal(src: Uint8Array, inW: number, h: number, outW: number): Uint8Array {
  const { ksize, bounds, weights } = precompute(inW, outW);
  const out = new Uint8Array(outW * h * 3);
  for (let y = 0; y < h; y++) {
    const row = y * inW * 3;
    for (let xx = 0; xx < outW; xx++) {
      const xmin = bounds[xx * 2], count = bounds[xx * 2 + 1], kb = xx * ksize;
      let s0 = HALF, s1 = HALF, s2 = HALF;
      for (let x = 0; x < count; x++) {
        const w = weights[kb + x], p = row + (xmin + x) * 3;
        s0 += src[p] * w;
        s1 += src[p + 1] * w;
        s2 += src[p + 2] * w;
      }
      const o = (y * outW + xx) * 3;
      out[o] = clip8(s0);
      out[o + 1] = clip8(s1);
      out[o + 2] = clip8(s2);
    }
  }
  return out;
}

/** Resamples along y: `src` is `w × inH`, result is `w × outH`. */
function vertical(src: Uint8Array, w: number, inH: number, outH: number): Uint8Array {
  const { ksize, bounds, weights } = precompute(inH, outH);
  const stride = w * 3;
  const out = new Uint8Array(stride * outH);
  for (let yy = 0; yy < outH; yy++) {
    const ymin = bounds[yy * 2], count = bounds[yy * 2 + 1], kb = yy * ksize;
    for (let i = 0; i < stride; i++) {
      let s = HALF;
      for (let y = 0; y < count; y++) s += src[(ymin + y) * stride + i] * weights[kb + y];
      out[yy * stride + i] = clip8(s);
    }
  }
  return out;
}

/**
 * Resizes with Pillow-exact antialiased bicubic resampling
 * (`Image.resize((width, height), Image.BICUBIC)`). Returns a new image; the
 * input is untouched. An axis whose size does not change is copied as is.
 * @param img source image
 * @param width output width (integer ≥ 1)
 * @param height output height (integer ≥ 1)
 */
export function resize(img: RgbImage, width: number, height: number): RgbImage {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`resize: bad target size ${width}x${height}`);
  }
  let data = img.data;
  if (width !== img.width) data = horizontal(data, img.width, img.height, width);
  if (height !== img.height) data = vertical(data, width, img.height, height);
  if (data === img.data) data = data.slice();
  return { width, height, data };
}

/** One axis's float weights of {@link resizePlanes}: per output, first source index and weights. */
function floatCoeffs(
  inSize: number,
  outSize: number,
): { first: Int32Array; weights: Float64Array[] } {
  const { bounds, weights, ksize } = precompute(inSize, outSize);
  const first = new Int32Array(outSize);
  const out: Float64Array[] = [];
  for (let i = 0; i < outSize; i++) {
    first[i] = bounds[2 * i];
    const count = bounds[2 * i + 1];
    const w = new Float64Array(count);
    for (let k = 0; k < count; k++) w[k] = weights[i * ksize + k] / ONE;
    out.push(w);
  }
  return { first, weights: out };
}

/**
 * Resizes `c` float planes [c][h][w] to [c][outH][outW] with the same
 * antialiased bicubic kernel as {@link resize} (Pillow's weights, horizontal
 * pass first), in floating point, unrounded: an optimised image carried from
 * one scale to the next keeps its precision.
 */
export function resizePlanes(
  data: Float32Array,
  c: number,
  h: number,
  w: number,
  outH: number,
  outW: number,
): Float32Array {
  const hx = floatCoeffs(w, outW);
  const vy = floatCoeffs(h, outH);
  const tmp = new Float32Array(c * h * outW);
  for (let p = 0; p < c * h; p++) {
    for (let x = 0; x < outW; x++) {
      const wts = hx.weights[x];
      let s = 0;
      for (let k = 0; k < wts.length; k++) s += data[p * w + hx.first[x] + k] * wts[k];
      tmp[p * outW + x] = s;
    }
  }
  const out = new Float32Array(c * outH * outW);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < outH; y++) {
      const wts = vy.weights[y];
      for (let x = 0; x < outW; x++) {
        let s = 0;
        for (let k = 0; k < wts.length; k++) {
          s += tmp[(ch * h + vy.first[y] + k) * outW + x] * wts[k];
        }
        out[(ch * outH + y) * outW + x] = s;
      }
    }
  }
  return out;
}

/**
 * Python's `round()`: nearest integer, ties to even.
 * @param x value to round
 */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Scales both sides by `s` with Python's rounding, never below 1. */
function scaleDims(width: number, height: number, s: number): [number, number] {
  return [Math.max(1, roundHalfEven(width * s)), Math.max(1, roundHalfEven(height * s))];
}

/**
 * Output size when the LONGER side is resized to `size`, keeping the aspect
 * ratio: each side `max(1, round(side * size / max(w, h)))` with Python's
 * half-to-even rounding; the longer side is exactly `size`.
 * @param width source width
 * @param height source height
 * @param size target length of the longer side
 */
export function fitLongerSide(width: number, height: number, size: number): [number, number] {
  const [w, h] = scaleDims(width, height, size / Math.max(width, height));
  return width >= height ? [size, h] : [w, size];
}

/**
 * Output size when the SHORTER side is resized to `size`, exactly as the
 * reference's `load_image`: `max(1, round(side * size / min(w, h)))` per side
 * (Python rounding, no forcing of the shorter side).
 * @param width source width
 * @param height source height
 * @param size target length of the shorter side
 */
export function fitShorterSide(width: number, height: number, size: number): [number, number] {
  return scaleDims(width, height, size / Math.min(width, height));
}
