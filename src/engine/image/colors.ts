/**
 * Keeping the content's colours (jcjohnson/neural-style's
 * `-original_colors 1`): the luminance of the stylised image with the
 * chrominance of the content, in BT.601 YUV on 8-bit RGB — reference.py's
 * `original_colors`.
 * @module
 */
import type { RgbImage } from "./types.ts";

/** RGB → YUV (BT.601, as torch7's image.rgb2yuv and reference.py's rgb_to_yuv). */
const RGB_TO_YUV = [
  [0.299, 0.587, 0.114],
  [-0.14713, -0.28886, 0.436],
  [0.615, -0.51499, -0.10001],
];

/** YUV → RGB (reference.py's yuv_to_rgb). */
const YUV_TO_RGB = [
  [1.0, 0.0, 1.13983],
  [1.0, -0.39465, -0.5806],
  [1.0, 2.03211, 0.0],
];

/** numpy's `rint`: nearest integer, ties to even. */
function rint(v: number): number {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Y (luminance) of `stylized`, U and V of `content` (the same size), back to
 * RGB, rounded and clamped to 0..255.
 */
export function originalColors(stylized: RgbImage, content: RgbImage): RgbImage {
  if (stylized.width !== content.width || stylized.height !== content.height) {
    throw new RangeError(
      `originalColors: ${stylized.width}×${stylized.height} and ${content.width}×${content.height}`,
    );
  }
  const n = stylized.width * stylized.height;
  const out = new Uint8Array(3 * n);
  const [ry, ru, rv] = RGB_TO_YUV;
  for (let i = 0; i < n; i++) {
    const [r, g, b] = [stylized.data[3 * i], stylized.data[3 * i + 1], stylized.data[3 * i + 2]];
    const [cr, cg, cb] = [content.data[3 * i], content.data[3 * i + 1], content.data[3 * i + 2]];
    const yuv = [
      ry[0] * r + ry[1] * g + ry[2] * b,
      ru[0] * cr + ru[1] * cg + ru[2] * cb,
      rv[0] * cr + rv[1] * cg + rv[2] * cb,
    ];
    for (let c = 0; c < 3; c++) {
      const m = YUV_TO_RGB[c];
      const v = rint(m[0] * yuv[0] + m[1] * yuv[1] + m[2] * yuv[2]);
      out[3 * i + c] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return { width: stylized.width, height: stylized.height, data: out };
}
