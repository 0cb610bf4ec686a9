import assert from "node:assert/strict";
import { createStylizer, type LossSpec, type Tensor } from "../mod.ts";
import { randomFloats } from "./helpers.ts";
import { weightsPath } from "./data.ts";

const stylizer = await createStylizer({
  weights: await weightsPath(),
  tilesFile: false,
});
const H = 31;
const W = 29;
const x: Tensor = { shape: [1, 3, H, W], data: randomFloats(3 * H * W, 42, -100, 100) };
const content = await stylizer.features(
  { shape: [1, 3, H, W], data: randomFloats(3 * H * W, 43, -100, 100) },
);
const style = await stylizer.features(
  { shape: [1, 3, H, W], data: randomFloats(3 * H * W, 44, -100, 100) },
);
const spec: LossSpec = {
  contentLayer: "fire4",
  contentWeight: 1e-3,
  contentTarget: content.fire4!,
  styleLayers: ["conv1", "fire3", "fire6"],
  styleWeights: [1e-2, 1e-2, 1e-2],
  styleTargets: await Promise.all(
    (["conv1", "fire3", "fire6"] as const).map((l) => stylizer.gram(style[l]!)),
  ),
  tvWeight: 1e-4,
};

async function lossAt(data: Float32Array): Promise<number> {
  return (await stylizer.lossAndGradient({ shape: x.shape, data }, spec)).loss;
}

Deno.test("gradient check: directional derivatives match central finite differences", async () => {
  const { gradient } = await stylizer.lossAndGradient(x, spec);
  for (const seed of [1, 2, 3]) {
    const d = randomFloats(x.data.length, 100 + seed);
    const eps = 0.05;
    const plus = x.data.map((v, i) => v + eps * d[i]);
    const minus = x.data.map((v, i) => v - eps * d[i]);
    const fd = (await lossAt(plus) - await lossAt(minus)) / (2 * eps);
    let an = 0;
    for (let i = 0; i < d.length; i++) an += gradient.data[i] * d[i];
    assert.ok(Math.abs(fd - an) <= 0.02 * Math.abs(an), `direction ${seed}: fd ${fd} vs ${an}`);
  }
});

Deno.test("gradient check: single pixels with the largest gradients match finite differences", async () => {
  const { gradient } = await stylizer.lossAndGradient(x, spec);
  const order = [...gradient.data.keys()].sort((a, b) =>
    Math.abs(gradient.data[b]) - Math.abs(gradient.data[a])
  );
  // The 3 largest and 3 from the middle of the ranking (including each channel).
  for (const i of [order[0], order[1], order[2], order[100], order[500], order[1000]]) {
    const eps = 0.5;
    const plus = x.data.slice();
    const minus = x.data.slice();
    plus[i] += eps;
    minus[i] -= eps;
    const fd = (await lossAt(plus) - await lossAt(minus)) / (2 * eps);
    const an = gradient.data[i];
    assert.ok(Math.abs(fd - an) <= 0.05 * Math.abs(an), `pixel ${i}: fd ${fd} vs ${an}`);
  }
});

Deno.test("gradient check: a content term in its own launch (fire3, below a pool) matches finite differences", async () => {
  // fire4's content term above goes into fire5's squeeze gradient launch;
  // fire3's gradient is written by pool3's backward, so its term keeps the
  // content kernel.
  const own: LossSpec = {
    ...spec,
    contentLayer: "fire3",
    contentWeight: 1e-2,
    contentTarget: content.fire3!,
    styleLayers: ["fire4"],
    styleWeights: [1e-3],
    styleTargets: [await stylizer.gram(style.fire4!)],
  };
  const { gradient } = await stylizer.lossAndGradient(x, own);
  const at = async (data: Float32Array) =>
    (await stylizer.lossAndGradient({ shape: x.shape, data }, own)).loss;
  const d = randomFloats(x.data.length, 7);
  const eps = 0.01;
  const fd = (await at(x.data.map((v, i) => v + eps * d[i])) -
    await at(x.data.map((v, i) => v - eps * d[i]))) / (2 * eps);
  let an = 0;
  for (let i = 0; i < d.length; i++) an += gradient.data[i] * d[i];
  assert.ok(Math.abs(fd - an) <= 0.02 * Math.abs(an), `fd ${fd} vs ${an}`);
});

globalThis.addEventListener("unload", () => stylizer.dispose());
