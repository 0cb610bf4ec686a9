import assert from "node:assert/strict";
import type { Engine } from "../src/model/stylizer.ts";
import { createStylizer } from "../mod.ts";
import { DEFAULT_CONFIG, optimize, styleTargets } from "../src/model/optimize.ts";
import { readSafetensors, relL2, sharedDir } from "./helpers.ts";

const { tensors, metadata } = readSafetensors(`${sharedDir()}/reference/adam20.safetensors`);
const ref = JSON.parse(metadata.config);
const engine = await createStylizer({ weights: `${sharedDir()}/weights/sqz_notop.mat` }) as Engine;

Deno.test("adam: the first 20 losses from the content image are within 1% of the oracle's", async () => {
  const config = {
    ...DEFAULT_CONFIG,
    contentLayer: ref.content_layer,
    contentWeight: ref.content_weight,
    styleLayers: ref.style_layers,
    styleWeights: ref.style_weights,
    tvWeight: ref.tv_weight,
    lr: ref.lr,
    iters: Number(metadata.iters),
    decayAt: ref.decay_at,
  };
  const content = tensors.get("content")!;
  const targets = await styleTargets(engine, [tensors.get("style")!], config.styleLayers);
  // Pool counters when the first losses come back (the loop is running by then).
  let during: { allocations: number; textures: number } | null = null;
  const r = await optimize(engine, {
    content,
    styleTargets: targets,
    config,
    onRecord: () => during ??= engine.poolStats,
  });
  const want = tensors.get("losses")!.data;
  assert.equal(r.records.length, 20);
  r.records.forEach((rec, i) => {
    const err = Math.abs(rec.loss - want[i]) / want[i];
    assert.ok(err <= 0.01, `iteration ${i}: loss ${rec.loss} vs ${want[i]} (${err})`);
  });
  // The final image stays close to the oracle's too (an extra check the issue does not set:
  // Adam's normalised steps amplify float differences; measured 0.0114).
  const err = relL2(r.x.data, tensors.get("x_final")!.data);
  assert.ok(err < 0.02, `x_final relative L2 ${err}`);
  // No GPU buffer or texture is made while the loop runs.
  assert.equal(engine.poolStats.allocations, during!.allocations);
  assert.equal(engine.poolStats.textures, during!.textures);
});

globalThis.addEventListener("unload", () => engine.dispose());
