import assert from "node:assert/strict";
import { createStylizer, type LossSpec, type TapName } from "../mod.ts";
import type { Engine } from "../src/engine/model/stylizer.ts";
import { readSafetensors, relErr, relL2 } from "./helpers.ts";
import { golden, weightsPath } from "./data.ts";

const weights = await weightsPath();
const { tensors: g, metadata } = readSafetensors(golden("backward"));
const cfg = JSON.parse(metadata.config);
const stylizer = await createStylizer({ weights, tilesFile: false }) as Engine;
const x = g.get("x")!;
const layers: TapName[] = cfg.style_layers;

/** The reference config with only the named terms switched on. */
function spec(on: { content?: boolean; style?: string[]; tv?: boolean }): LossSpec {
  return {
    contentLayer: cfg.content_layer,
    contentWeight: on.content ? cfg.content_weight : 0,
    contentTarget: g.get("content_target")!,
    styleLayers: layers,
    styleWeights: layers.map((l: string, i: number) =>
      on.style?.includes(l) ? cfg.style_weights[i] : 0
    ),
    styleTargets: layers.map((l) => g.get(`gram_target/${l}`)!),
    tvWeight: on.tv ? cfg.tv_weight : 0,
  };
}

Deno.test("gram: the Grams of the style image's features match gram_target/* within 1e-4", async () => {
  const feats = await stylizer.features(g.get("style")!, layers);
  for (const l of layers) {
    const got = await stylizer.gram(feats[l]!);
    const want = g.get(`gram_target/${l}`)!;
    assert.deepEqual(got.shape, want.shape);
    const err = relL2(got.data, want.data);
    assert.ok(err <= 1e-4, `${l}: ${err}`);
  }
});

Deno.test("tapGrams: the style image's Grams computed in place equal gram(features) and gram_target/*", async () => {
  const feats = await stylizer.features(g.get("style")!, layers);
  const grams = await stylizer.tapGrams(g.get("style")!, layers);
  for (const [i, l] of layers.entries()) {
    const viaReadback = await stylizer.gram(feats[l]!);
    assert.deepEqual(grams[i].shape, viaReadback.shape);
    // The same sums in the same order: equal up to the last bit or so.
    assert.ok(relL2(grams[i].data, viaReadback.data) <= 1e-6, l);
    assert.ok(relL2(grams[i].data, g.get(`gram_target/${l}`)!.data) <= 1e-4, l);
  }
});

const CASES: [string, Parameters<typeof spec>[0]][] = [
  ["content", { content: true }],
  ["style", { style: layers }],
  ["tv", { tv: true }],
  ...layers.map((l): [string, Parameters<typeof spec>[0]] => [`style/${l}`, { style: [l] }]),
  ["total", { content: true, style: layers, tv: true }],
];

for (const [term, on] of CASES) {
  Deno.test(`lossAndGradient: loss/${term} within 1e-4 and grad/${term} within 1e-3`, async () => {
    const r = await stylizer.lossAndGradient(x, spec(on));
    const wantLoss = g.get(`loss/${term}`)!.data[0];
    const gotLoss = term === "content"
      ? r.terms.content
      : term.startsWith("style")
      ? r.terms.style
      : term === "tv"
      ? r.terms.tv
      : r.loss;
    assert.ok(relErr(gotLoss, wantLoss) <= 1e-4, `loss ${gotLoss} vs ${wantLoss}`);
    assert.ok(relErr(r.loss, wantLoss) <= 1e-4, `total ${r.loss} vs ${wantLoss}`);
    const err = relL2(r.gradient.data, g.get(`grad/${term}`)!.data);
    assert.ok(err <= 1e-3, `grad/${term}: relative L2 error ${err}`);
  });
}

Deno.test("lossAndGradient: a second call at the same size makes no GPU buffer or texture", async () => {
  const s = spec({ content: true, style: layers, tv: true });
  await stylizer.lossAndGradient(x, s);
  const before = stylizer.poolStats;
  assert.ok(before.textures > 0);
  await stylizer.lossAndGradient(x, s);
  assert.equal(stylizer.poolStats.allocations, before.allocations);
  assert.equal(stylizer.poolStats.textures, before.textures);
});

Deno.test("backward: no GPU validation errors were raised", () => {
  assert.deepEqual(stylizer.gpu.errors, []);
});

globalThis.addEventListener("unload", () => stylizer.dispose());
