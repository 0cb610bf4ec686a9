/**
 * The coarse-to-fine schedule (src/engine/model/schedule.ts): the scales and
 * their size-invariant weights, one scale reproducing reference.py's loop
 * exactly, the upsampling between scales, iterate averaging and blended
 * style targets checked against their definitions.
 */
import assert from "node:assert/strict";
import { createEngine } from "../src/deno/stylizer.ts";
import { fitLongerSide, resize } from "../src/engine/image/resize.ts";
import { fromTensor, toTensor } from "../src/engine/image/tensor.ts";
import {
  DEFAULT_CONFIG,
  type IterationRecord,
  optimize,
  styleTargets,
} from "../src/engine/model/optimize.ts";
import {
  planScales,
  REFERENCE_PIXELS,
  scaleSizes,
  type ScheduleOptions,
  stylize,
  upsample,
} from "../src/engine/model/schedule.ts";
import type { Tensor } from "../src/engine/model/stylizer.ts";
import { adam20Config, randomFloats, readSafetensors, relL2 } from "./helpers.ts";
import { golden, weightsPath } from "./data.ts";

const engine = await createEngine({
  weights: await weightsPath(),
  tilesFile: false,
});
const { tensors, metadata } = readSafetensors(golden("adam20"));
/** The configuration of adam20.safetensors (reference.py's DEFAULT, as the oracle runs it). */
const CONFIG = adam20Config(metadata);

Deno.test("scaleSizes: √2 apart from the first to the last, which is the size", () => {
  assert.deepEqual(scaleSizes(128, 512), [128, 181, 256, 362, 512]);
  assert.deepEqual(scaleSizes(256, 1024), [256, 362, 512, 724, 1024]);
  assert.deepEqual(scaleSizes(256, 750), [256, 362, 512, 750]);
  assert.deepEqual(scaleSizes(512, 512), [512]);
  assert.deepEqual(scaleSizes(600, 512), [512]);
});

Deno.test("planScales: content and TV weights scaled to each scale's pixels, style weights as given, first scale's iterations", () => {
  const content = { width: 400, height: 300, data: new Uint8Array(3 * 400 * 300) };
  const o: ScheduleOptions = {
    content,
    styles: [content],
    size: 400,
    minSize: 200,
    iters: 10,
    config: { ...DEFAULT_CONFIG, iters: 10, decayAt: 9 },
  };
  const scales = planScales(o);
  assert.deepEqual(scales.map((s) => [s.w, s.h]), [[200, 150], [283, 212], [400, 300]]);
  assert.deepEqual(scales.map((s) => s.iters), [20, 10, 10]);
  assert.deepEqual(scales.map((s) => s.config.decayAt), [18, 9, 9]);
  for (const s of scales) {
    const k = REFERENCE_PIXELS / (s.h * s.w);
    assert.ok(Math.abs(s.config.contentWeight / (DEFAULT_CONFIG.contentWeight * k) - 1) < 1e-12);
    assert.ok(Math.abs(s.config.tvWeight / (DEFAULT_CONFIG.tvWeight * k) - 1) < 1e-12);
    assert.deepEqual(s.config.styleWeights, DEFAULT_CONFIG.styleWeights);
  }
  // --reference-pixels 0: plain sums, the weights as given.
  for (const s of planScales({ ...o, referencePixels: 0 })) {
    assert.equal(s.config.contentWeight, DEFAULT_CONFIG.contentWeight);
    assert.equal(s.config.tvWeight, DEFAULT_CONFIG.tvWeight);
  }
  // One scale: the iterations as given.
  assert.deepEqual(planScales({ ...o, minSize: 400 }).map((s) => s.iters), [10]);
});

Deno.test("one scale with plain sums is reference.py's run: the adam20 losses within 1%, bit for bit optimize's", async () => {
  const content = tensors.get("content")!;
  const style = tensors.get("style")!;
  const [, , h, w] = content.shape;
  const [, , sh, sw] = style.shape;
  const records: IterationRecord[] = [];
  const r = await stylize(engine, {
    content: fromTensor(content),
    styles: [fromTensor(style)],
    size: Math.max(h, w),
    styleSize: Math.max(sh, sw),
    minSize: Math.max(h, w),
    iters: CONFIG.iters,
    config: CONFIG,
    referencePixels: 0,
    onRecord: (rec) => records.push(rec),
  });
  assert.equal(r.scales.length, 1);
  const want = tensors.get("losses")!.data;
  records.forEach((rec, i) => {
    const err = Math.abs(rec.loss - want[i]) / want[i];
    assert.ok(err <= 0.01, `iteration ${i}: loss ${rec.loss} vs ${want[i]} (${err})`);
  });
  // The same as the loop run directly on the golden's tensors.
  const direct = await optimize(engine, {
    content,
    styleTargets: await styleTargets(engine, [style], CONFIG.styleLayers),
    config: CONFIG,
  });
  assert.deepEqual(records.map((x) => x.loss), direct.records.map((x) => x.loss));
  assert.deepEqual(r.x.data, direct.x.data);
});

Deno.test("upsample: the same size gives the image back; a larger one stays inside valid pixels and is the 8-bit bicubic resize's within 1.8 levels", () => {
  const [h, w] = [9, 13];
  const x: Tensor = { shape: [1, 3, h, w], data: randomFloats(3 * h * w, 5, -100, 130) };
  const same = upsample(x, h, w);
  assert.ok(relL2(same.data, x.data) < 1e-6);
  const big = upsample(x, 18, 26);
  assert.deepEqual(big.shape, [1, 3, 18, 26]);
  const mean = [104.006, 116.669, 122.679];
  for (let c = 0; c < 3; c++) {
    for (let k = c * 18 * 26; k < (c + 1) * 18 * 26; k++) {
      assert.ok(big.data[k] >= -mean[c] - 1e-3 && big.data[k] <= 255 - mean[c] + 1e-3);
    }
  }
  // A smooth image (no overshoot past 0…255), against the same filter on
  // 8-bit pixels: its three roundings (the input, the horizontal pass, the
  // result; the first two grown by the taps' |weights|, 1.1875 per pass at
  // 2×: 0.0703 + 0.8672 + 0.2266 + 0.0234) stay within
  // 0.5·1.1875² + 0.5·1.1875 + 0.5 ≈ 1.799 < 1.8 levels.
  const smooth: Tensor = {
    shape: [1, 3, h, w],
    data: Float32Array.from({ length: 3 * h * w }, (_, k) => 60 * Math.sin(k * 0.37) + 10),
  };
  const up = upsample(smooth, 18, 26);
  const bytes = toTensor(resize(fromTensor(smooth), 26, 18));
  up.data.forEach((v, k) => assert.ok(Math.abs(v - bytes.data[k]) <= 1.8, `element ${k}`));
});

Deno.test("iterate averaging on the GPU is the bias-corrected average of the iterates", async () => {
  const content = tensors.get("content")!;
  const targets = await styleTargets(engine, [tensors.get("style")!], CONFIG.styleLayers);
  const config = { ...CONFIG, iters: 6 };
  const iterates: Float32Array[] = [];
  const plain = await optimize(engine, {
    content,
    styleTargets: targets,
    config,
    snapshotEvery: 1,
    onSnapshot: (_, x) => {
      iterates.push(x.data);
    },
  });
  iterates.push(plain.x.data);
  const d = 0.8;
  const avg = await optimize(engine, { content, styleTargets: targets, config, avgDecay: d });
  // reference.py's Ema: a_t = d·a_(t−1) + (1−d)·x_t, a_0 = 0; value a_t / (1 − d^t).
  const a = new Float64Array(plain.x.data.length);
  iterates.forEach((x, t) => {
    for (let k = 0; k < a.length; k++) a[k] = d * a[k] + (1 - d) * x[k];
    if (t === iterates.length - 1) {
      for (let k = 0; k < a.length; k++) a[k] /= 1 - d ** iterates.length;
    }
  });
  const e = relL2(avg.x.data, a);
  assert.ok(e < 1e-5, `relative L2 ${e}`);
  // Averaging only reads the iterates: the losses are the plain run's.
  assert.deepEqual(avg.records.map((r) => r.loss), plain.records.map((r) => r.loss));
});

Deno.test("blended style targets are the weighted mean of each style's Grams", async () => {
  const a = tensors.get("style")!;
  const b = tensors.get("content")!;
  const layers = CONFIG.styleLayers;
  const [ga, gb] = [await engine.tapGrams(a, layers), await engine.tapGrams(b, layers)];
  const blended = await styleTargets(engine, [a, b], layers, [1, 3]);
  layers.forEach((_: string, i: number) => {
    const want = ga[i].data.map((v, k) => (v * 1 + gb[i].data[k] * 3) / 4);
    assert.ok(relL2(blended[i].data, want) < 1e-6);
    assert.ok(relL2(blended[i].data, ga[i].data) > 1e-3, "not the first style alone");
  });
});

Deno.test("a second scale starts from the first scale's result upsampled: its first loss is the loss there, not at the content", async () => {
  const content = fromTensor(tensors.get("content")!);
  const style = fromTensor(tensors.get("style")!);
  const firstLoss = new Map<number, number>();
  const r = await stylize(engine, {
    content,
    styles: [style],
    size: 48,
    minSize: 34,
    styleSize: 48,
    iters: 2,
    firstIters: 3,
    config: { ...CONFIG, iters: 2, decayAt: 2 },
    onRecord: (rec, scale) => {
      if (!firstLoss.has(scale.index)) firstLoss.set(scale.index, rec.loss);
    },
  });
  assert.deepEqual(r.scales.map((s) => [s.w, s.h, s.steps]), [[34, 23, 3], [48, 32, 2]]);
  const s = r.scales[1];
  const spec = {
    contentLayer: s.config.contentLayer,
    contentWeight: s.config.contentWeight,
    contentTarget: (await engine.features(toTensor(resize(content, s.w, s.h)), [
      s.config.contentLayer,
    ]))[s.config.contentLayer]!,
    styleLayers: s.config.styleLayers,
    styleWeights: s.config.styleWeights,
    styleTargets: await styleTargets(
      engine,
      [toTensor(resize(style, ...fitLongerSide(style.width, style.height, s.styleSize)))],
      s.config.styleLayers,
    ),
    tvWeight: s.config.tvWeight,
  };
  const lossAt = async (x: Tensor) => (await engine.lossAndGradient(x, spec)).loss;
  const want = await lossAt(upsample(r.scales[0].x, s.h, s.w));
  const got = firstLoss.get(1)!;
  assert.ok(Math.abs(got - want) <= 1e-4 * want, `first loss ${got} vs ${want}`);
  // A restart from the content (or from the first scale's start) would be far off.
  const atContent = await lossAt(toTensor(resize(content, s.w, s.h)));
  assert.ok(Math.abs(got - atContent) > 0.05 * atContent, `the content's loss ${atContent}`);
});

globalThis.addEventListener("unload", () => engine.dispose());
