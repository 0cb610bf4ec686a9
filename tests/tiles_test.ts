/**
 * Images split into tiles (src/engine/model/tiles.ts, tiled_plan.ts) compute
 * what the whole image does: the tile geometry partitions every layer and
 * covers each owned position's receptive field; features are the same bits,
 * Gram matrices, losses and gradients the same within float rounding of a
 * different summation order. Small buffer limits force the splits here.
 */
import assert from "node:assert/strict";
import { createEngine } from "../src/deno/stylizer.ts";
import type { Engine, LossSpec, Tensor } from "../src/engine/model/stylizer.ts";
import { layerDims, TAP_NAMES, tapLayerIndex } from "../src/engine/model/squeezenet.ts";
import {
  chooseGrid,
  layerStride,
  receptiveRange,
  tileGrid,
  tileHalo,
} from "../src/engine/model/tiles.ts";
import { randomFloats, relL2 } from "./helpers.ts";
import { weightsPath } from "./data.ts";

const WEIGHTS = await weightsPath();

Deno.test("tileGrid: the owned rectangles of every layer partition it, and each tile's input holds its owned positions' receptive fields", () => {
  for (
    const [h, w, upto, rows, cols] of [
      [100, 70, 6, 2, 2],
      [131, 97, 11, 3, 2],
      [64, 200, 3, 1, 4],
      [131, 101, 11, 2, 1],
      [200, 64, 6, 3, 1],
    ]
  ) {
    const grid = tileGrid(h, w, upto, rows, cols);
    const full = layerDims(h, w);
    for (let i = 0; i <= upto; i++) {
      const s = layerStride(i);
      const seen = new Uint8Array(full[i].h * full[i].w);
      for (const t of grid.tiles) {
        const r = t.layers[i];
        const [dy, dx] = [t.input.y0 / s, t.input.x0 / s];
        assert.ok(
          Number.isInteger(dy) && Number.isInteger(dx),
          `tile corner off layer ${i}'s grid`,
        );
        for (let y = r.y0; y < r.y1; y++) {
          for (let x = r.x0; x < r.x1; x++) seen[(y + dy) * full[i].w + x + dx]++;
        }
        // The receptive field of the owned positions lies in the tile's input.
        const [ylo, yhi] = receptiveRange(i, r.y0 + dy, r.y1 + dy);
        const [xlo, xhi] = receptiveRange(i, r.x0 + dx, r.x1 + dx);
        assert.ok(ylo >= t.input.y0 || t.input.y0 === 0, `rows ${ylo} before tile ${t.index}`);
        assert.ok(yhi <= t.input.y1 || t.input.y1 === h, `rows ${yhi} after tile ${t.index}`);
        assert.ok(xlo >= t.input.x0 || t.input.x0 === 0, `columns ${xlo} before tile ${t.index}`);
        assert.ok(xhi <= t.input.x1 || t.input.x1 === w, `columns ${xhi} after tile ${t.index}`);
      }
      assert.ok(seen.every((n) => n === 1), `layer ${i} of ${h}×${w}: not a partition`);
      // Row tiles: each tile's owned rows start on a multiple of 4 rows of its input's layer.
      if (cols === 1) {
        for (const t of grid.tiles) {
          assert.equal(t.layers[i].y0 % 4, 0, `tile ${t.index}, layer ${i}`);
        }
      }
    }
  }
  assert.deepEqual(tileHalo(6), { before: 24, after: 31, stride: 8 });
});

Deno.test("chooseGrid takes the fewest tiles that fit, one for an image that fits whole", () => {
  assert.equal(chooseGrid(100, 100, 6, () => true)!.tiles.length, 1);
  const g = chooseGrid(400, 300, 6, (h, w) => h * w <= 150 * 150)!;
  assert.ok(g.tiles.every((t) => (t.input.y1 - t.input.y0) * (t.input.x1 - t.input.x0) <= 22500));
  assert.ok(g.tiles.length >= 6, String(g.tiles.length));
  assert.equal(chooseGrid(400, 300, 6, () => false), null);
});

/**
 * Engines on the same adapter: the whole image at once, and split into tiles
 * of at most 64×64 pixels (enough for the halo of layers up to fire5; deeper
 * ones need larger tiles, tested at a larger size below).
 */
const whole = await createEngine({ weights: WEIGHTS, tilesFile: false }) as Engine;
const split = await createEngine({ weights: WEIGHTS, tilesFile: false, tilePixels: 64 * 64 });
/** Split into row tiles (whole rows, read in place by the loss kernels): two at 131×101. */
const rows = await createEngine({ weights: WEIGHTS, tilesFile: false, tilePixels: 101 * 100 });
const SHALLOW = TAP_NAMES.slice(0, 5);

const [H, W] = [83, 101];
const image = (seed: number): Tensor => ({
  shape: [1, 3, H, W],
  data: randomFloats(3 * H * W, seed, -110, 130),
});

Deno.test("split into tiles, features are the whole image's, bit for bit", async () => {
  assert.ok(split.gridFor(H, W, tapLayerIndex("fire5"))!.tiles.length > 4);
  assert.equal(whole.gridFor(H, W, tapLayerIndex("fire5")), null);
  const x = image(1);
  const a = await whole.features(x, SHALLOW);
  const b = await split.features(x, SHALLOW);
  for (const t of SHALLOW) {
    assert.deepEqual(b[t]!.shape, a[t]!.shape, t);
    assert.deepEqual(b[t]!.data, a[t]!.data, t);
  }
});

Deno.test("split into tiles, every tap down to fire9 is the whole image's, bit for bit", async () => {
  const [h, w] = [241, 330];
  const deep = await createEngine({ weights: WEIGHTS, tilesFile: false, tilePixels: 240 * 240 });
  try {
    assert.ok(deep.gridFor(h, w, tapLayerIndex("fire9"))!.tiles.length >= 2);
    const x = { shape: [1, 3, h, w], data: randomFloats(3 * h * w, 9, -110, 130) };
    const a = await whole.features(x);
    const b = await deep.features(x);
    for (const t of TAP_NAMES) assert.deepEqual(b[t]!.data, a[t]!.data, t);
  } finally {
    deep.dispose();
  }
});

Deno.test("split into tiles or rows, a style image's Grams are the whole image's within 1e-6", async () => {
  const x = image(2);
  const taps = ["conv1", "fire3", "fire4", "fire5"] as const;
  const tall = { shape: [1, 3, 131, W], data: randomFloats(3 * 131 * W, 2, -110, 130) };
  for (const [engine, img] of [[split, x], [rows, tall]] as const) {
    assert.ok(engine.gridFor(img.shape[2], W, tapLayerIndex("fire5"))!.tiles.length > 1);
    const a = await whole.tapGrams(img, [...taps]);
    const b = await engine.tapGrams(img, [...taps]);
    taps.forEach((t, i) => {
      const e = relL2(b[i].data, a[i].data);
      assert.ok(e <= 1e-6, `${t}: relative L2 ${e}`);
    });
  }
});

Deno.test("split into tiles or rows, the loss, its terms and its gradient are the whole image's within 1e-6", async () => {
  // Rows: 131×101 in two row tiles of at most 101×100 pixels.
  assert.equal(rows.gridFor(131, W, tapLayerIndex("fire5"))!.cols, 1);
  assert.equal(rows.gridFor(131, W, tapLayerIndex("fire5"))!.rows, 2);
  assert.ok(split.gridFor(H, W, tapLayerIndex("fire5"))!.cols > 1);
  for (const [mode, engine, h] of [["tiles", split, H], ["rows", rows, 131]] as const) {
    const img = (seed: number): Tensor => ({
      shape: [1, 3, h, W],
      data: randomFloats(3 * h * W, seed, -110, 130),
    });
    const x = img(3);
    const content = await whole.features(img(4), ["fire2", "fire4"]);
    const style = img(5);
    for (
      const [contentLayer, styleLayers] of [
        ["fire2", ["conv1", "fire3", "fire4", "fire5"]],
        ["fire4", ["fire2", "fire4", "fire5"]],
      ] as const
    ) {
      const spec: LossSpec = {
        contentLayer,
        contentWeight: 2e-5,
        contentTarget: content[contentLayer]!,
        styleLayers: [...styleLayers],
        styleWeights: styleLayers.map(() => 1e-3),
        styleTargets: await whole.tapGrams(style, [...styleLayers]),
        tvWeight: 6e-6,
      };
      const a = await whole.lossAndGradient(x, spec);
      const b = await engine.lossAndGradient(x, spec);
      for (const k of ["content", "style", "tv"] as const) {
        const e = Math.abs(b.terms[k] - a.terms[k]) / Math.abs(a.terms[k]);
        assert.ok(
          e <= 1e-6,
          `${mode}, ${contentLayer}: ${k} ${b.terms[k]} vs ${a.terms[k]} (${e})`,
        );
      }
      const e = relL2(b.gradient.data, a.gradient.data);
      assert.ok(e <= 1e-6, `${mode}, ${contentLayer}: gradient relative L2 ${e}`);
    }
  }
});

/** The same splits with average pooling (`--pooling avg`): each window's divisor is its count in the whole image. */
const wholeAvg = await createEngine({ weights: WEIGHTS, tilesFile: false, pooling: "avg" });
const splitAvg = await createEngine({
  weights: WEIGHTS,
  tilesFile: false,
  tilePixels: 64 * 64,
  pooling: "avg",
});

Deno.test("with average pooling, split into tiles: features are the whole image's bit for bit; the loss, its terms and its gradient within 1e-6", async () => {
  assert.ok(splitAvg.gridFor(H, W, tapLayerIndex("fire5"))!.tiles.length > 4);
  const x = image(11);
  const a = await wholeAvg.features(x, SHALLOW);
  const b = await splitAvg.features(x, SHALLOW);
  const maxPooled = await whole.features(x, ["fire5"]);
  for (const t of SHALLOW) assert.deepEqual(b[t]!.data, a[t]!.data, t);
  // Average pooling indeed: fire5 is not max pooling's.
  assert.ok(relL2(a.fire5!.data, maxPooled.fire5!.data) > 0.01);
  const styleLayers = ["conv1", "fire3", "fire4", "fire5"] as const;
  const spec: LossSpec = {
    contentLayer: "fire2",
    contentWeight: 2e-5,
    contentTarget: (await wholeAvg.features(image(12), ["fire2"])).fire2!,
    styleLayers: [...styleLayers],
    styleWeights: styleLayers.map(() => 1e-3),
    styleTargets: await wholeAvg.tapGrams(image(13), [...styleLayers]),
    tvWeight: 6e-6,
  };
  const whole1 = await wholeAvg.lossAndGradient(x, spec);
  const split1 = await splitAvg.lossAndGradient(x, spec);
  for (const k of ["content", "style", "tv"] as const) {
    const e = Math.abs(split1.terms[k] - whole1.terms[k]) / Math.abs(whole1.terms[k]);
    assert.ok(e <= 1e-6, `${k} ${split1.terms[k]} vs ${whole1.terms[k]} (${e})`);
  }
  const e = relL2(split1.gradient.data, whole1.gradient.data);
  assert.ok(e <= 1e-6, `gradient relative L2 ${e}`);
});

Deno.test("split into tiles, the plan's memory is planned: the tiles' transients share one tile's worth", async () => {
  const before = split.poolStats;
  const spec: LossSpec = {
    contentLayer: "fire2",
    contentWeight: 2e-5,
    contentTarget: (await split.features(image(6), ["fire2"])).fire2!,
    styleLayers: ["conv1"],
    styleWeights: [1e-3],
    styleTargets: await split.tapGrams(image(7), ["conv1"]),
    tvWeight: 6e-6,
  };
  const plan = await split.lossPlan(H, W, spec);
  const mem = plan.scope.memoryPlan!;
  assert.ok(plan.tiles > 1, String(plan.tiles));
  // The tiles run one after another: they share one tile's worth of memory.
  assert.ok(
    mem.bytes < 1.5 * mem.unsharedBytes / plan.tiles,
    `${mem.bytes} bytes for ${mem.unsharedBytes} in ${plan.tiles} tiles`,
  );
  assert.ok(mem.backings < mem.transients / 3, JSON.stringify(mem));
  assert.ok(split.poolStats.allocations > before.allocations);
});

globalThis.addEventListener("unload", () => {
  whole.dispose();
  split.dispose();
  rows.dispose();
  wholeAvg.dispose();
  splitAvg.dispose();
});
