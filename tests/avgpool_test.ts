/**
 * Average pooling through the whole network (`createStylizer({ pooling: "avg" })`):
 * the forward taps against PyTorch's avgpool.safetensors; and, as there is no
 * PyTorch golden of avg-pool gradients, features, losses and gradients at
 * other sizes against the CPU reference of tests/reference_net.ts (checked
 * here against the PyTorch goldens first), plus finite differences.
 *
 * The sizes are odd on both sides, chosen so that the pools' inputs have
 * even sides, where ceil mode clips the last window: in the forward and
 * gradient tests 97×75 (conv1 48×37, fire3 24×18, fire5 12×9), 53×41 (26×20,
 * 13×10, 6×5) and 67×45 (33×22, 16×11, 8×5: one even side each), in the
 * finite differences 37×53 (18×26, 9×13, 4×6).
 * So do the goldens' (tests/oracle/oracle.py): the photo (33×65) at every pool on
 * both sides, backward.safetensors' x (45×67) at pool1 along the height and pool3
 * along the width.
 */
import assert from "node:assert/strict";
import { createStylizer, type LossSpec, TAP_NAMES, type TapName, type Tensor } from "../mod.ts";
import type { Engine } from "../src/engine/model/stylizer.ts";
import { loadWeights } from "../src/deno/weights_file.ts";
import { NetWeights, recordForward, SQUEEZENET } from "../src/engine/model/squeezenet.ts";
import { Program } from "../src/engine/gpu/scheduler.ts";
import { Scope } from "../src/engine/ops/context.ts";
import type { Pooling } from "../src/engine/ops/pool.ts";
import { randomFloats, readSafetensors, relErr, relL2, testContext } from "./helpers.ts";
import { golden, weightsPath as findWeights } from "./data.ts";
import * as ref from "./reference_net.ts";

const weightsPath = await findWeights();
const weights = await loadWeights(weightsPath);
const forward = readSafetensors(golden("forward")).tensors;
const avgGolden = readSafetensors(golden("avgpool")).tensors;
const backward = readSafetensors(golden("backward"));
const stylizer = await createStylizer({
  weights: weightsPath,
  tilesFile: false,
  pooling: "avg",
}) as Engine;

function image(h: number, w: number, seed: number): Tensor {
  return { shape: [1, 3, h, w], data: randomFloats(3 * h * w, seed, -100, 100) };
}

function refAct(t: Tensor): ref.Act {
  return ref.toAct(t.shape, t.data);
}

Deno.test("avg pooling forward: every tap of photo matches PyTorch's avgpool.safetensors within 1e-4", async () => {
  const got = await stylizer.features(forward.get("photo/input")!);
  for (const tap of TAP_NAMES) {
    const want = avgGolden.get(`photo/${tap}`)!;
    assert.deepEqual(got[tap]!.shape, want.shape, `${tap} shape`);
    const err = relL2(got[tap]!.data, want.data);
    assert.ok(err <= 1e-4, `photo/${tap}: relative L2 error ${err}`);
  }
});

Deno.test("CPU reference: reproduces PyTorch's max-pool taps (noise), avg-pool taps (photo) and max-pool grad/total within 1e-5", () => {
  const check = (got: Map<TapName, ref.Act>, want: (t: TapName) => Float32Array, what: string) => {
    for (const tap of TAP_NAMES) {
      const err = relL2(got.get(tap)!.data, want(tap));
      assert.ok(err <= 1e-5, `${what}/${tap}: relative L2 error ${err}`);
    }
  };
  const noise = refAct(forward.get("noise/input")!);
  check(
    ref.features(noise, weights, "fire9", "max"),
    (t) => forward.get(`noise/${t}`)!.data,
    "max",
  );
  const photo = refAct(forward.get("photo/input")!);
  check(
    ref.features(photo, weights, "fire9", "avg"),
    (t) => avgGolden.get(`photo/${t}`)!.data,
    "avg",
  );
  const { tensors: g, metadata } = backward;
  const cfg = JSON.parse(metadata.config);
  const r = ref.lossAndGrad(refAct(g.get("x")!), weights, {
    contentLayer: cfg.content_layer,
    contentWeight: cfg.content_weight,
    contentTarget: g.get("content_target")!.data,
    styleLayers: cfg.style_layers,
    styleWeights: cfg.style_weights,
    styleTargets: cfg.style_layers.map((l: string) => g.get(`gram_target/${l}`)!.data),
    tvWeight: cfg.tv_weight,
  }, "max");
  const loss = g.get("loss/total")!.data[0];
  assert.ok(relErr(r.loss, loss) <= 1e-5, `loss ${r.loss} vs ${loss}`);
  const err = relL2(r.grad, g.get("grad/total")!.data);
  assert.ok(err <= 1e-5, `grad/total: relative L2 error ${err}`);
});

for (const [h, w] of [[97, 75], [53, 41], [67, 45]]) {
  Deno.test(`avg pooling forward ${h}×${w} (edge-clipped windows): every tap matches the CPU reference within 1e-4`, async () => {
    const x = image(h, w, h * w);
    const got = await stylizer.features(x);
    const want = ref.features(refAct(x), weights, "fire9", "avg");
    assert.deepEqual(Object.keys(got), [...want.keys()]);
    for (const [tap, a] of want) {
      assert.deepEqual(got[tap]!.shape, [1, a.c, a.h, a.w], `${tap} shape`);
      const err = relL2(got[tap]!.data, a.data);
      assert.ok(err <= 1e-4, `${h}×${w} ${tap}: relative L2 error ${err}`);
    }
  });
}

/** A loss spec whose targets are the avg network's (as the optimiser makes them) for content and style. */
async function avgSpec(
  content: Tensor,
  style: Tensor,
  o: Pick<LossSpec, "contentLayer" | "contentWeight" | "styleLayers" | "styleWeights" | "tvWeight">,
): Promise<LossSpec> {
  return {
    ...o,
    contentTarget: (await stylizer.features(content, [o.contentLayer]))[o.contentLayer]!,
    styleTargets: await stylizer.tapGrams(style, o.styleLayers),
  };
}

/** Checks the avg engine's loss, terms and gradient at x against the CPU reference's. */
async function expectMatchesReference(x: Tensor, spec: LossSpec, what: string): Promise<void> {
  const got = await stylizer.lossAndGradient(x, spec);
  const want = ref.lossAndGrad(refAct(x), weights, {
    ...spec,
    contentTarget: spec.contentTarget.data,
    styleTargets: spec.styleTargets!.map((t) => t.data),
    regions: undefined,
  }, "avg");
  for (const term of ["content", "style", "tv"] as const) {
    const e = relErr(got.terms[term], want.terms[term]);
    assert.ok(e <= 1e-4, `${what}: ${term} ${got.terms[term]} vs ${want.terms[term]}`);
  }
  assert.ok(relErr(got.loss, want.loss) <= 1e-4, `${what}: loss ${got.loss} vs ${want.loss}`);
  const err = relL2(got.gradient.data, want.grad);
  assert.ok(err <= 1e-3, `${what}: gradient relative L2 error ${err}`);
}

Deno.test("avg lossAndGradient on the goldens (backward.safetensors' x, config, content and style): loss within 1e-4 and gradient within 1e-3 of the CPU reference", async () => {
  const { tensors: g, metadata } = backward;
  const cfg = JSON.parse(metadata.config);
  const spec = await avgSpec(g.get("content")!, g.get("style")!, {
    contentLayer: cfg.content_layer,
    contentWeight: cfg.content_weight,
    styleLayers: cfg.style_layers,
    styleWeights: cfg.style_weights,
    tvWeight: cfg.tv_weight,
  });
  await expectMatchesReference(g.get("x")!, spec, "goldens");
});

// The reference configuration, and one down to fire9 (through pool5's backward).
const DEFAULT_LOSS = {
  contentLayer: "fire2" as TapName,
  contentWeight: 2e-5,
  styleLayers: ["conv1", "fire3", "fire4", "fire5"] as TapName[],
  styleWeights: [5e-2, 1.5e-3, 3e-5, 3e-6],
  tvWeight: 6e-6,
};
const DEEP_LOSS = {
  ...DEFAULT_LOSS,
  contentLayer: "fire6" as TapName,
  styleLayers: ["conv1", "fire3", "fire7", "fire9"] as TapName[],
};
for (
  const [h, w, o, name] of [[97, 75, DEFAULT_LOSS, "fire2/conv1…fire5"], [
    53,
    41,
    DEEP_LOSS,
    "fire6/conv1…fire9",
  ]] as const
) {
  Deno.test(`avg lossAndGradient ${h}×${w} (content/style ${name}, edge-clipped windows): loss within 1e-4 and gradient within 1e-3 of the CPU reference`, async () => {
    const spec = await avgSpec(image(h, w, 1), image(h + 6, w + 10, 2), o);
    await expectMatchesReference(image(h, w, 3), spec, `${h}×${w}`);
  });
}

Deno.test("avg lossAndGradient 37×53: directional derivatives match central finite differences", async () => {
  const [h, w] = [37, 53];
  const x = image(h, w, 42);
  const spec = await avgSpec(image(h, w, 43), image(h, w, 44), {
    contentLayer: "fire4",
    contentWeight: 1e-3,
    styleLayers: ["conv1", "fire3", "fire6"],
    styleWeights: [1e-2, 1e-2, 1e-2],
    tvWeight: 1e-4,
  });
  const lossAt = async (data: Float32Array) =>
    (await stylizer.lossAndGradient({ shape: x.shape, data }, spec)).loss;
  const { gradient } = await stylizer.lossAndGradient(x, spec);
  for (const seed of [1, 2, 3]) {
    const d = randomFloats(x.data.length, 100 + seed);
    const eps = 0.05;
    const fd = (await lossAt(x.data.map((v, i) => v + eps * d[i])) -
      await lossAt(x.data.map((v, i) => v - eps * d[i]))) / (2 * eps);
    let an = 0;
    for (let i = 0; i < d.length; i++) an += gradient.data[i] * d[i];
    assert.ok(Math.abs(fd - an) <= 0.02 * Math.abs(an), `direction ${seed}: fd ${fd} vs ${an}`);
  }
});

Deno.test("avg tapGrams 53×41: the Grams computed in place equal gram(features) and the CPU reference's", async () => {
  const x = image(53, 41, 9);
  const layers: TapName[] = ["conv1", "fire3", "fire5", "fire9"];
  const grams = await stylizer.tapGrams(x, layers);
  const feats = await stylizer.features(x, layers);
  const want = ref.features(refAct(x), weights, "fire9", "avg");
  for (const [i, l] of layers.entries()) {
    assert.ok(relL2(grams[i].data, (await stylizer.gram(feats[l]!)).data) <= 1e-6, l);
    const err = relL2(grams[i].data, ref.gram(want.get(l)!));
    assert.ok(err <= 1e-4, `${l}: relative L2 error ${err}`);
  }
});

/** A scope that lists what it is asked for. */
class ListingScope extends Scope {
  asked: { bytes: number; usage: number; label: string }[] = [];

  override acquire(bytes: number, usage: GPUBufferUsageFlags, label: string): GPUBuffer {
    this.asked.push({ bytes, usage, label });
    return super.acquire(bytes, usage, label);
  }
}

Deno.test("avg pooling records no argmax buffer: its forward asks for max's buffers less the three argmaxes", async () => {
  const { ctx, gpu, pool } = await testContext();
  const net = NetWeights.upload(ctx, new Scope(pool), weights);
  const [h, w] = [53, 41];
  const record = async (pooling: Pooling) => {
    const scope = new ListingScope(pool);
    const input = scope.floats(3 * h * w, "input");
    const prog = new Program(gpu.device);
    const last = SQUEEZENET.length - 1;
    const fwd = await recordForward(ctx, scope, prog, net, input, h, w, last, { pooling });
    scope.dispose();
    return { fwd, asked: scope.asked };
  };
  const max = await record("max");
  const avg = await record("avg");
  assert.equal(avg.fwd.pooling, "avg");
  assert.deepEqual(avg.fwd.argmax, avg.fwd.argmax.map(() => null));
  const isArgmax = (b: { label: string }) => b.label.endsWith(".argmax");
  assert.deepEqual(max.asked.filter(isArgmax).map((b) => b.label), [
    "pool1.argmax",
    "pool3.argmax",
    "pool5.argmax",
  ]);
  assert.deepEqual(avg.asked, max.asked.filter((b) => !isArgmax(b)));
});

Deno.test("avg pooling: no GPU validation errors were raised", () => {
  assert.deepEqual(stylizer.gpu.errors, []);
});

globalThis.addEventListener("unload", () => stylizer.dispose());
