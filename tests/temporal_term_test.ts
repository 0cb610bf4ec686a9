/**
 * The temporal term as a loss module (src/engine/loss/temporal.ts): through
 * the engine's loss-and-gradient, alone and beside the other terms, whole and
 * over tiles and row bands, against a float64 CPU reference of
 * w/D·Σ c·(x − ω)² and its gradient 2w/D·c·(x − ω).
 */
import assert from "node:assert/strict";
import { createEngine } from "../src/deno/stylizer.ts";
import type { LossSpec, Tensor } from "../src/engine/model/stylizer.ts";
import { DEFAULT_CONFIG } from "../src/engine/model/optimize.ts";
import { randomFloats, relErr, relL2, rng } from "./helpers.ts";
import { weightsPath } from "./data.ts";

const WEIGHTS = await weightsPath();

/** ω, c (0 or 1, a third of the pixels 0) and x for an h×w image. */
function inputs(h: number, w: number, seed: number) {
  const r = rng(seed, 0, 1);
  const c = Float32Array.from({ length: h * w }, () => r() < 1 / 3 ? 0 : 1);
  const img = (s: number): Tensor => ({
    shape: [1, 3, h, w],
    data: randomFloats(3 * h * w, s, -110, 130),
  });
  return { x: img(seed + 1), omega: img(seed + 2), c: { shape: [1, 1, h, w], data: c } };
}

/** The term and its gradient in doubles. */
function reference(x: Tensor, omega: Tensor, c: Tensor, weight: number) {
  const [, , h, w] = x.shape;
  const n = h * w;
  let loss = 0;
  const grad = new Float64Array(3 * n);
  for (let ch = 0; ch < 3; ch++) {
    for (let p = 0; p < n; p++) {
      const d = x.data[ch * n + p] - omega.data[ch * n + p];
      loss += weight / n * c.data[p] * d * d;
      grad[ch * n + p] = 2 * weight / n * c.data[p] * d;
    }
  }
  return { loss, grad };
}

/** A spec with only the temporal term (every other weight 0). */
function spec(
  t: { omega: Tensor; c: Tensor },
  weight: number,
  style: Tensor[],
): LossSpec {
  return {
    ...DEFAULT_CONFIG,
    contentWeight: 0,
    contentTarget: { shape: [1, 64, 1, 1], data: new Float32Array(64) },
    styleWeights: DEFAULT_CONFIG.styleLayers.map(() => 0),
    styleTargets: style,
    tvWeight: 0,
    temporal: { weight, target: t.omega, weights: t.c },
  };
}

Deno.test("the temporal term alone: loss and gradient within 1e-6 of a float64 reference, whole and in tiles", async () => {
  const whole = await createEngine({ weights: WEIGHTS, tilesFile: false });
  const split = await createEngine({ weights: WEIGHTS, tilesFile: false, tilePixels: 64 * 64 });
  try {
    const [h, w] = [83, 101];
    const { x, omega, c } = inputs(h, w, 7);
    const style = await whole.tapGrams(x, DEFAULT_CONFIG.styleLayers);
    const want = reference(x, omega, c, 0.37);
    for (const [mode, e] of [["whole", whole], ["tiles", split]] as const) {
      const got = await e.lossAndGradient(x, spec({ omega, c }, 0.37, style));
      assert.equal(e.lastLossPlan!.tiles > 1, mode === "tiles", mode);
      assert.ok(
        relErr(got.terms.temporal, want.loss) <= 1e-6,
        `${mode}: ${got.terms.temporal} vs ${want.loss}`,
      );
      assert.equal(got.loss, got.terms.temporal);
      const err = relL2(got.gradient.data, want.grad);
      assert.ok(err <= 1e-6, `${mode}: gradient relative L2 ${err}`);
    }
  } finally {
    whole.dispose();
    split.dispose();
  }
});

Deno.test("the temporal term beside content, style and TV adds its own loss and gradient to theirs (image in two bands)", async () => {
  // A buffer limit that stores the image in two bands of rows.
  const banded = await createEngine({
    weights: WEIGHTS,
    tilesFile: false,
    maxBufferBytes: 2 * 2 ** 20,
  });
  try {
    const [h, w] = [360, 560];
    const { x, omega, c } = inputs(h, w, 11);
    assert.ok(banded.gridFor(h, w, 6) !== null);
    const style = await banded.tapGrams(x, DEFAULT_CONFIG.styleLayers);
    const content = await banded.features(omega, ["fire2"]);
    const full: LossSpec = {
      ...DEFAULT_CONFIG,
      contentTarget: content.fire2!,
      styleTargets: style.map((g) => ({ ...g, data: g.data.map((v) => v * 0.8) })),
    };
    const without = await banded.lossAndGradient(x, full);
    const withT = await banded.lossAndGradient(x, {
      ...full,
      temporal: { weight: 2, target: omega, weights: c },
    });
    assert.equal(banded.lastLossPlan!.x.bands.length, 2);
    const want = reference(x, omega, c, 2);
    assert.ok(relErr(withT.terms.temporal, want.loss) <= 1e-6);
    for (const k of ["content", "style", "tv"] as const) {
      assert.equal(withT.terms[k], without.terms[k]);
    }
    const diff = withT.gradient.data.map((v, i) => v - without.gradient.data[i]);
    const err = relL2(diff, want.grad);
    assert.ok(err <= 1e-4, `gradient difference relative L2 ${err}`);
  } finally {
    banded.dispose();
  }
});
