/**
 * The before/after view: the result over the content at the same size, the
 * content shown left of a divider the `#compare` slider moves.
 * @module
 */

/** The pair of images compared (the content at the output size, the result). */
export interface ComparePair {
  before: ImageBitmap;
  after: ImageBitmap;
}

/**
 * Draws the result with the content left of `at` (0: the result alone; 1:
 * the content alone) and a line at the divider.
 */
export function drawCompare(canvas: HTMLCanvasElement, pair: ComparePair, at: number): void {
  const { after, before } = pair;
  if (canvas.width !== after.width) canvas.width = after.width;
  if (canvas.height !== after.height) canvas.height = after.height;
  const ctx = canvas.getContext("2d")!;
  const { width: w, height: h } = canvas;
  ctx.drawImage(after, 0, 0);
  const x = Math.round(Math.min(1, Math.max(0, at)) * w);
  if (x <= 0) return;
  ctx.drawImage(before, 0, 0, x, h, 0, 0, x, h);
  if (x < w) {
    ctx.fillStyle = "#fff";
    ctx.fillRect(x - Math.max(1, Math.round(w / 400)), 0, Math.max(2, Math.round(w / 200)), h);
  }
}
