/**
 * Test fixtures: JPEGs with an EXIF Orientation tag, made at test time (an
 * APP1 Exif segment written right after SOI, in either byte order), and the
 * eight orientations done independently of the code under test (as mirror,
 * flip and transpose compositions).
 * @module
 */
import type { RgbImage } from "../src/engine/image/types.ts";

/** `jpeg` with an APP1 Exif segment whose IFD0 holds Orientation = `orientation`. */
export function withOrientation(
  jpeg: Uint8Array,
  orientation: number,
  littleEndian = true,
): Uint8Array {
  const tiff = new Uint8Array(8 + 2 + 12 + 4);
  const v = new DataView(tiff.buffer);
  tiff.set(littleEndian ? [0x49, 0x49] : [0x4d, 0x4d]);
  v.setUint16(2, 42, littleEndian);
  v.setUint32(4, 8, littleEndian); // IFD0 right after the header
  v.setUint16(8, 1, littleEndian); // one entry
  v.setUint16(10, 0x0112, littleEndian); // Orientation
  v.setUint16(12, 3, littleEndian); // SHORT
  v.setUint32(14, 1, littleEndian); // one value
  v.setUint16(18, orientation, littleEndian);
  v.setUint32(22, 0, littleEndian); // no next IFD
  const payload = [...new TextEncoder().encode("Exif"), 0, 0, ...tiff];
  const len = payload.length + 2;
  const app1 = new Uint8Array([0xff, 0xe1, len >> 8, len & 0xff, ...payload]);
  const out = new Uint8Array(jpeg.length + app1.length);
  out.set(jpeg.subarray(0, 2));
  out.set(app1, 2);
  out.set(jpeg.subarray(2), 2 + app1.length);
  return out;
}

/** A pixel map: the image whose pixel (x, y) is `img`'s at `from(x, y)`. */
function remap(
  img: RgbImage,
  width: number,
  height: number,
  from: (x: number, y: number) => [number, number],
): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const [sx, sy] = from(x, y);
      data.set(
        img.data.subarray((sy * img.width + sx) * 3, (sy * img.width + sx) * 3 + 3),
        (y * width + x) * 3,
      );
    }
  }
  return { width, height, data };
}

const mirror = (i: RgbImage) => remap(i, i.width, i.height, (x, y) => [i.width - 1 - x, y]);
const flip = (i: RgbImage) => remap(i, i.width, i.height, (x, y) => [x, i.height - 1 - y]);
const transpose = (i: RgbImage) => remap(i, i.height, i.width, (x, y) => [y, x]);

/**
 * The upright image for each EXIF orientation, from the EXIF definitions:
 * 2 mirrored, 3 turned 180°, 4 flipped, 5 mirrored then turned 270° clockwise,
 * 6 turned 90° clockwise, 7 mirrored then turned 90° clockwise, 8 turned 270°.
 */
export function uprightByDefinition(img: RgbImage, orientation: number): RgbImage {
  const cw = (i: RgbImage) => mirror(transpose(i));
  const ccw = (i: RgbImage) => flip(transpose(i));
  switch (orientation) {
    case 2:
      return mirror(img);
    case 3:
      return cw(cw(img));
    case 4:
      return flip(img);
    case 5:
      return ccw(mirror(img));
    case 6:
      return cw(img);
    case 7:
      return cw(mirror(img));
    case 8:
      return ccw(img);
    default:
      return img;
  }
}

/** A 48×32 image that no turn or mirror maps onto itself: gradients and a corner block. */
export function asymmetric(width = 48, height = 32): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      const corner = x < width / 3 && y < height / 3;
      data[i] = Math.round(255 * x / (width - 1));
      data[i + 1] = Math.round(255 * y / (height - 1));
      data[i + 2] = corner ? 255 : 40;
    }
  }
  return { width, height, data };
}
