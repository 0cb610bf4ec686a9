/**
 * EXIF orientations applied to decoded pixels, as browsers show a photo
 * (`image-orientation: from-image`): a camera stores the sensor's rows and
 * tags how to turn them upright.
 * @module
 */
import type { RgbImage } from "./types.ts";

/**
 * The upright image of pixels stored with EXIF orientation `orientation`
 * (1: as stored; 2: mirrored; 3: turned 180°; 4: flipped; 5: transposed;
 * 6: turned 90° clockwise; 7: transversed; 8: turned 90° anticlockwise).
 * Any other value leaves the image as it is, as browsers do.
 * @param img the pixels as stored
 * @param orientation the EXIF Orientation tag's value
 */
export function applyOrientation(img: RgbImage, orientation: number): RgbImage {
  if (!Number.isInteger(orientation) || orientation < 2 || orientation > 8) return img;
  const { width: w, height: h } = img;
  const swap = orientation >= 5;
  const [ow, oh] = swap ? [h, w] : [w, h];
  // Source column and row of output pixel (x, y).
  type Source = (x: number, y: number) => [number, number];
  const sources: Source[] = [
    (x, y) => [w - 1 - x, y], // 2
    (x, y) => [w - 1 - x, h - 1 - y], // 3
    (x, y) => [x, h - 1 - y], // 4
    (x, y) => [y, x], // 5
    (x, y) => [y, h - 1 - x], // 6
    (x, y) => [w - 1 - y, h - 1 - x], // 7
    (x, y) => [w - 1 - y, x], // 8
  ];
  const source = sources[orientation - 2];
  const data = new Uint8Array(ow * oh * 3);
  for (let y = 0; y < oh; y++) {
    for (let x = 0; x < ow; x++) {
      const [sx, sy] = source(x, y);
      const s = (sy * w + sx) * 3, d = (y * ow + x) * 3;
      data[d] = img.data[s];
      data[d + 1] = img.data[s + 1];
      data[d + 2] = img.data[s + 2];
    }
  }
  return { width: ow, height: oh, data };
}
