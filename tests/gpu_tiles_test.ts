/**
 * GPU_TILES, the tile table hardware GPUs start from (src/engine/ops/context.ts),
 * computes what the adapter's own table does, on whichever adapter runs the
 * tests (lavapipe in `deno task test`, SwiftShader in
 * `deno task test:swiftshader`): the network's taps, and a whole loss and
 * gradient, against the PyTorch goldens and against the default table, whole
 * and split into tiles. Each kernel family's GPU_TILES entry against the
 * default tile at odd shapes is tune_test.ts's candidate test (every entry is
 * a candidate, which that file asserts).
 */
import assert from "node:assert/strict";
import { TAP_NAMES } from "../mod.ts";
import { createEngine } from "../src/deno/stylizer.ts";
import { DEFAULT_TILES, GPU_TILES, type TileTable, WIDE_TILES } from "../src/engine/ops/context.ts";
import { CANDIDATES } from "../src/engine/model/tune.ts";
import type { Engine, LossSpec, Tensor } from "../src/engine/model/stylizer.ts";
import { tapLayerIndex } from "../src/engine/model/squeezenet.ts";
import { randomFloats, readSafetensors, relErr, relL2 } from "./helpers.ts";
import { golden, weightsPath } from "./data.ts";

const WEIGHTS = await weightsPath();
const forward = readSafetensors(golden("forward")).tensors;
const { tensors: g, metadata } = readSafetensors(golden("backward"));
const cfg = JSON.parse(metadata.config);

/** The adapter's own table (what the engine runs by default), and GPU_TILES whole and in tiles. */
const own = await createEngine({ weights: WEIGHTS, tilesFile: false }) as Engine;
const gpu = await createEngine({ weights: WEIGHTS, tilesFile: false, tiles: GPU_TILES }) as Engine;
const split = await createEngine({
  weights: WEIGHTS,
  tilesFile: false,
  tiles: GPU_TILES,
  tilePixels: 64 * 64,
}) as Engine;

/**
 * Each feature and gradient element is summed in the same order whatever the
 * tile (measured: bit for bit on lavapipe and SwiftShader); the losses add
 * up workgroup partial sums whose grouping follows the tile, so they agree
 * to float rounding (≈ 1e-8 measured).
 */
const ROUNDING = 1e-6;

/** WebGPU's least maxComputeInvocationsPerWorkgroup: every adapter has at least this. */
const LEAST_INVOCATIONS = 256;

Deno.test("every tile table and tune candidate fits any adapter's workgroups (≤ 256 invocations) and this one's", () => {
  const max = Math.min(LEAST_INVOCATIONS, gpu.gpu.limits.maxComputeInvocationsPerWorkgroup);
  const tables: [string, TileTable][] = [
    ["DEFAULT_TILES", DEFAULT_TILES],
    ["WIDE_TILES", WIDE_TILES],
    ["GPU_TILES", GPU_TILES],
  ];
  const tiles = [
    ...tables.flatMap(([name, t]) => Object.entries(t).map(([f, tile]) => [`${name}.${f}`, tile])),
    ...Object.entries(CANDIDATES).flatMap(([f, ts]) => ts.map((t) => [`candidate ${f}`, t])),
  ] as [string, { WG: number }][];
  assert.ok(tiles.length > 30, String(tiles.length));
  for (const [name, tile] of tiles) {
    assert.ok(tile.WG >= 1 && tile.WG <= max, `${name}: ${JSON.stringify(tile)}`);
  }
});

Deno.test("GPU_TILES: every tap of photo matches the PyTorch oracle within 1e-4 and the adapter's table bit for bit", async () => {
  assert.deepEqual(gpu.ctx.tiles, GPU_TILES);
  const input = forward.get("photo/input")!;
  const got = await gpu.features(input);
  const ref = await own.features(input);
  for (const tap of TAP_NAMES) {
    const want = forward.get(`photo/${tap}`)!;
    assert.deepEqual(got[tap]!.shape, want.shape, tap);
    const err = relL2(got[tap]!.data, want.data);
    assert.ok(err <= 1e-4, `${tap}: relative L2 error ${err} to the oracle`);
    assert.deepEqual(got[tap]!.data, ref[tap]!.data, `${tap}: not the adapter's table's`);
  }
});

Deno.test("GPU_TILES: lossAndGradient of backward.safetensors' total within 1e-4 / 1e-3 of the oracle; the adapter's table's gradient bit for bit, its terms to rounding", async () => {
  const layers = cfg.style_layers;
  const spec: LossSpec = {
    contentLayer: cfg.content_layer,
    contentWeight: cfg.content_weight,
    contentTarget: g.get("content_target")!,
    styleLayers: layers,
    styleWeights: cfg.style_weights,
    styleTargets: layers.map((l: string) => g.get(`gram_target/${l}`)!),
    tvWeight: cfg.tv_weight,
  };
  const x = g.get("x")!;
  const r = await gpu.lossAndGradient(x, spec);
  const wantLoss = g.get("loss/total")!.data[0];
  assert.ok(relErr(r.loss, wantLoss) <= 1e-4, `loss ${r.loss} vs the oracle's ${wantLoss}`);
  const err = relL2(r.gradient.data, g.get("grad/total")!.data);
  assert.ok(err <= 1e-3, `gradient: relative L2 error ${err} to the oracle`);
  const ref = await own.lossAndGradient(x, spec);
  for (const k of ["content", "style", "tv"] as const) {
    const e = relErr(r.terms[k], ref.terms[k]);
    assert.ok(e <= ROUNDING, `${k} ${r.terms[k]} vs ${ref.terms[k]} (${e})`);
  }
  assert.deepEqual(r.gradient.data, ref.gradient.data, "gradient: not the adapter's table's");
});

Deno.test("GPU_TILES split into tiles: the loss, its terms and its gradient are the whole image's within 1e-6", async () => {
  const [h, w] = [83, 101];
  assert.ok(split.gridFor(h, w, tapLayerIndex("fire5"))!.tiles.length > 4);
  const img = (seed: number): Tensor => ({
    shape: [1, 3, h, w],
    data: randomFloats(3 * h * w, seed, -110, 130),
  });
  const styleLayers = ["conv1", "fire3", "fire4", "fire5"] as const;
  const spec: LossSpec = {
    contentLayer: "fire2",
    contentWeight: 2e-5,
    contentTarget: (await gpu.features(img(4), ["fire2"])).fire2!,
    styleLayers: [...styleLayers],
    styleWeights: styleLayers.map(() => 1e-3),
    styleTargets: await gpu.tapGrams(img(5), [...styleLayers]),
    tvWeight: 6e-6,
  };
  const x = img(3);
  const a = await gpu.lossAndGradient(x, spec);
  const b = await split.lossAndGradient(x, spec);
  for (const k of ["content", "style", "tv"] as const) {
    const e = relErr(b.terms[k], a.terms[k]);
    assert.ok(e <= 1e-6, `${k} ${b.terms[k]} vs ${a.terms[k]} (${e})`);
  }
  const e = relL2(b.gradient.data, a.gradient.data);
  assert.ok(e <= 1e-6, `gradient: relative L2 ${e}`);
});

Deno.test("GPU_TILES: no GPU validation errors were raised", () => {
  assert.deepEqual(gpu.gpu.errors, []);
  assert.deepEqual(split.gpu.errors, []);
});

globalThis.addEventListener("unload", () => {
  own.dispose();
  gpu.dispose();
  split.dispose();
});
