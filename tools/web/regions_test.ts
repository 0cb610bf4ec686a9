/**
 * The page's regions (spatial control) without a browser: the brush's
 * strokes (coverage of each pixel's distance to the path, however the
 * pointer's events cut it; the eraser), and a mask's PNG as the CLI reads
 * it (its `--style-masks` gets exactly the painted values).
 * @module
 */
import assert from "node:assert/strict";
import { decodeImage } from "../../src/deno/image/mod.ts";
import { maskTensor } from "../../src/engine/image/mask.ts";
import {
  type Brush,
  brushRadius,
  coverage,
  dab,
  emptyMask,
  isEmpty,
  stroke,
} from "../../src/web/brush.ts";
import { maskPng } from "../../src/web/mask_png.ts";

const BRUSH: Brush = { radius: 6, softness: 0.5, erase: false };

Deno.test("brush: a stroke gives each pixel the coverage of its distance to the path", () => {
  const m = emptyMask(40, 30);
  stroke(m, [5, 10], [30, 10], BRUSH);
  for (let y = 0; y < 30; y++) {
    for (let x = 0; x < 40; x++) {
      const [px, py] = [x + 0.5, y + 0.5];
      const cx = Math.min(30, Math.max(5, px));
      const d = Math.hypot(px - cx, py - 10);
      assert.equal(m.data[y * 40 + x], coverage(d, BRUSH), `pixel ${x},${y}`);
    }
  }
  // The hard core is 255, nothing past the radius.
  assert.equal(m.data[10 * 40 + 17], 255);
  assert.equal(m.data[17 * 40 + 17], 0);
  assert.equal(coverage(2.9, BRUSH), 255);
  assert.ok(coverage(4.5, BRUSH) > 0 && coverage(4.5, BRUSH) < 255);
  assert.equal(coverage(6, BRUSH), 0);
});

Deno.test("brush: a path cut into more segments paints the same pixels", () => {
  const whole = emptyMask(50, 50);
  stroke(whole, [4, 4], [44, 30], BRUSH);
  stroke(whole, [44, 30], [10, 45], BRUSH);
  const cut = emptyMask(50, 50);
  const path: [number, number][] = [[4, 4], [14, 10.5], [34, 23.5], [44, 30], [27, 37.5], [
    10,
    45,
  ]];
  for (let k = 1; k < path.length; k++) stroke(cut, path[k - 1], path[k], BRUSH);
  let differ = 0;
  for (let i = 0; i < whole.data.length; i++) {
    if (Math.abs(whole.data[i] - cut.data[i]) > 1) differ++;
  }
  assert.equal(differ, 0);
});

Deno.test("brush: the eraser takes away what it covers, a dab paints a disk", () => {
  const m = emptyMask(30, 30);
  stroke(m, [0, 15], [30, 15], { ...BRUSH, softness: 0 });
  assert.ok(!isEmpty(m));
  dab(m, 15, 15, { radius: 4, softness: 0, erase: true });
  assert.equal(m.data[15 * 30 + 15], 0);
  assert.equal(m.data[15 * 30 + 25], 255);
  dab(m, 15, 15, { radius: 40, softness: 0, erase: true });
  assert.ok(isEmpty(m));
  assert.equal(brushRadius({ width: 300, height: 200 }, 10), 15);
});

Deno.test("mask PNG: 8-bit grayscale, and the CLI's reader gets the painted values", async () => {
  const m = emptyMask(37, 23);
  for (let i = 0; i < m.data.length; i++) m.data[i] = (i * 37) % 256;
  stroke(m, [3, 3], [30, 20], BRUSH);
  const png = await maskPng(m);
  // IHDR: 37×23, bit depth 8, colour type 0 (grayscale).
  const view = new DataView(png.buffer);
  assert.deepEqual([view.getUint32(16), view.getUint32(20), png[24], png[25]], [37, 23, 8, 0]);
  const img = await decodeImage(png, "mask.png");
  assert.deepEqual([img.width, img.height], [37, 23]);
  for (let i = 0; i < m.data.length; i++) {
    assert.deepEqual([...img.data.subarray(3 * i, 3 * i + 3)], [m.data[i], m.data[i], m.data[i]]);
  }
  // The engine's mask at the mask's own size: value / 255 (a gray's luminance is itself).
  const t = maskTensor(img, 37, 23);
  assert.deepEqual(t.data, Float32Array.from(m.data, (v) => v / 255));
});
