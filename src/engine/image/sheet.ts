/**
 * Side-by-side contact sheets (e.g. the "progressive stages" sheet).
 * @module
 */
import { resize } from "./resize.ts";
import { newImage, type RgbImage } from "./types.ts";

/** Copies `src` into `dst` with its top-left corner at column `x0`, row `y0`. */
function blit(dst: RgbImage, src: RgbImage, x0: number, y0: number): void {
  const rowBytes = src.width * 3;
  for (let y = 0; y < src.height; y++) {
    const from = y * rowBytes;
    dst.data.set(src.data.subarray(from, from + rowBytes), ((y0 + y) * dst.width + x0) * 3);
  }
}

/** Width of `img` once scaled to `height`, aspect kept, at least 1. */
function scaledWidth(img: RgbImage, height: number): number {
  return Math.max(1, Math.round(img.width * height / img.height));
}

/**
 * Places images side by side, each scaled (Pillow bicubic, {@link resize}) to
 * `height`, separated and framed by `gap` white pixels.
 * @param images images left to right (at least one)
 * @param height common height of every tile
 * @param gap white pixels between tiles and around the sheet (default 8)
 */
export function contactSheet(images: RgbImage[], height: number, gap = 8): RgbImage {
  if (images.length === 0) throw new RangeError("contactSheet: no images");
  if (!Number.isInteger(height) || height < 1) throw new RangeError("contactSheet: bad height");
  const g = Math.max(0, Math.floor(gap));
  const tiles = images.map((im) =>
    im.height === height ? im : resize(im, scaledWidth(im, height), height)
  );
  const width = tiles.reduce((s, t) => s + t.width + g, g);
  const sheet = newImage(width, height + 2 * g, 255);
  let x = g;
  for (const t of tiles) {
    blit(sheet, t, x, g);
    x += t.width + g;
  }
  return sheet;
}
