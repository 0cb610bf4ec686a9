/**
 * The style-transfer loop: Adam on the image's pixels, on the GPU, with the
 * learning rate dropping to a tenth at `decayAt` and a clamp to valid pixels
 * after every step (reference.py's `run`). Each iteration is one submission;
 * losses are read back through a ring of staging buffers a few iterations
 * late, so the GPU never waits for the CPU.
 * @module
 */
import { UserError } from "../errors.ts";
import { Program, ReadbackRing } from "../gpu/scheduler.ts";
import { MEAN_BGR } from "../image/tensor.ts";
import { adamParams, adamStep } from "../ops/adam.ts";
import { Scope } from "../ops/context.ts";
import type { TapName } from "./squeezenet.ts";
import { Engine, type LossSpec, type LossTerms, type Tensor } from "./stylizer.ts";

/** Hyper-parameters of a run. */
export interface StyleConfig {
  contentLayer: TapName;
  contentWeight: number;
  styleLayers: TapName[];
  styleWeights: number[];
  tvWeight: number;
  /** Adam learning rate. */
  lr: number;
  /** Iterations. */
  iters: number;
  /** Iteration (0-based) from which the learning rate is lr/10. */
  decayAt: number;
}

/** reference.py's DEFAULT (decay at 90% of the iterations). */
export const DEFAULT_CONFIG: StyleConfig = {
  contentLayer: "fire2",
  contentWeight: 2e-5,
  styleLayers: ["conv1", "fire3", "fire4", "fire5"],
  styleWeights: [5e-2, 1.5e-3, 3e-5, 3e-6],
  tvWeight: 6e-6,
  lr: 10,
  iters: 200,
  decayAt: 180,
};

/** Adam's β1, β2, ε (PyTorch defaults). */
export const ADAM = { beta1: 0.9, beta2: 0.999, eps: 1e-8 };

/** Losses of one iteration (before its step), as read back. */
export interface IterationRecord {
  /** Iteration index, 0-based. */
  i: number;
  loss: number;
  content: number;
  style: number;
  tv: number;
  /** Wall time since the loop started, at the moment the record was read. */
  ms: number;
}

/** Options of {@link optimize}. */
export interface OptimizeOptions {
  /** Preprocessed content image [1,3,H,W]. */
  content: Tensor;
  /** Target Grams per style layer (already blended). */
  styleTargets: Tensor[];
  /** Starting image [1,3,H,W]; default the content. */
  init?: Tensor;
  config: StyleConfig;
  /** Called with each read-back record (in order). */
  onRecord?: (r: IterationRecord) => void;
  /** Iterations (1-based counts) after which `onSnapshot` receives the image. */
  snapshotEvery?: number;
  /** Receives the image after `i` steps. */
  onSnapshot?: (steps: number, x: Tensor) => Promise<void> | void;
  /** Stops after the current iteration when aborted. */
  signal?: AbortSignal;
}

/** Result of {@link optimize}. */
export interface OptimizeResult {
  /** The final image (after the last step and clamp). */
  x: Tensor;
  /** Steps done (less than iters when stopped). */
  steps: number;
  /** One record per iteration. */
  records: IterationRecord[];
}

/** Loss terms at the start of iteration `i`, from the scalars. */
function record(i: number, s: Float32Array, styleCount: number, t0: number): IterationRecord {
  const { loss, terms } = Engine.terms(s, styleCount) as { loss: number; terms: LossTerms };
  return { i, loss, ...terms, ms: performance.now() - t0 };
}

/** Gram targets for style images: per layer, the (weighted) mean of each style's Gram. */
export async function styleTargets(
  engine: Engine,
  styles: Tensor[],
  layers: TapName[],
  blend?: number[],
): Promise<Tensor[]> {
  const w = blend ?? styles.map(() => 1);
  if (w.length !== styles.length) {
    throw new UserError(`--style-blend needs ${styles.length} weights, got ${w.length}`);
  }
  const sum = w.reduce((a, b) => a + b, 0);
  if (!(sum > 0)) throw new UserError("style blend weights must not all be 0");
  const out: Tensor[] = [];
  const feats = [];
  for (const s of styles) feats.push(await engine.features(s, layers));
  for (const l of layers) {
    let acc: Float32Array | null = null;
    let shape: number[] = [];
    for (let k = 0; k < styles.length; k++) {
      const g = await engine.gram(feats[k][l]!);
      shape = g.shape;
      acc ??= new Float32Array(g.data.length);
      for (let e = 0; e < acc.length; e++) acc[e] += g.data[e] * w[k] / sum;
    }
    out.push({ shape, data: acc! });
  }
  return out;
}

/** Runs the optimisation loop on the GPU. */
export async function optimize(engine: Engine, o: OptimizeOptions): Promise<OptimizeResult> {
  const { config: cfg } = o;
  const [, , h, w] = o.content.shape;
  const device = engine.gpu.device;
  const contentTarget = (await engine.features(o.content, [cfg.contentLayer]))[cfg.contentLayer]!;
  const spec: LossSpec = {
    contentLayer: cfg.contentLayer,
    contentWeight: cfg.contentWeight,
    contentTarget,
    styleLayers: cfg.styleLayers,
    styleWeights: cfg.styleWeights,
    styleTargets: o.styleTargets,
    tvWeight: cfg.tvWeight,
  };
  const plan = await engine.lossPlan(h, w, spec);
  engine.writeTargets(plan, spec);
  const n = 3 * h * w;
  // Optimiser state: allocated once, before the loop.
  const scope = new Scope(engine.ctx.pool);
  const prog = new Program(device);
  const m = scope.floats(n, "adam.m");
  const v = scope.floats(n, "adam.v");
  const uniform = await adamStep(engine.ctx, scope, prog, {
    label: "adam",
    n,
    grad: plan.grad,
    x: plan.x,
    m,
    v,
  });
  const floats = plan.styleCount + 3;
  const ring = new ReadbackRing(device, 4, floats * 4);
  const lo = MEAN_BGR.map((mu) => -mu);
  const hi = MEAN_BGR.map((mu) => 255 - mu);
  const records: IterationRecord[] = [];
  const pending: { i: number; slot: number }[] = [];
  const t0 = performance.now();
  const drain = async (keep: number) => {
    while (pending.length > keep) {
      const { i, slot } = pending.shift()!;
      const r = record(i, new Float32Array(await ring.take(slot)), plan.styleCount, t0);
      records.push(r);
      o.onRecord?.(r);
    }
  };
  const imageRing = new ReadbackRing(device, 1, n * 4);
  const snapshot = async () => {
    const enc = device.createCommandEncoder();
    const slot = imageRing.record(enc, plan.x);
    device.queue.submit([enc.finish()]);
    imageRing.map(slot);
    const data = new Float32Array(await imageRing.take(slot));
    return { shape: [1, 3, h, w], data } as Tensor;
  };
  try {
    device.queue.writeBuffer(plan.x, 0, new Float32Array((o.init ?? o.content).data));
    const enc0 = device.createCommandEncoder();
    enc0.clearBuffer(m);
    enc0.clearBuffer(v);
    device.queue.submit([enc0.finish()]);
    let steps = 0;
    for (let i = 0; i < cfg.iters; i++) {
      if (o.signal?.aborted) break;
      const lr = i >= cfg.decayAt ? cfg.lr / 10 : cfg.lr;
      device.queue.writeBuffer(uniform, 0, adamParams(n, h * w, i + 1, lr, ADAM, lo, hi));
      const enc = device.createCommandEncoder();
      plan.prog.encode(enc);
      prog.encode(enc);
      const slot = ring.record(enc, plan.scalars);
      device.queue.submit([enc.finish()]);
      ring.map(slot);
      pending.push({ i, slot });
      steps = i + 1;
      await drain(ring.capacity - 1);
      if (o.onSnapshot && o.snapshotEvery && steps % o.snapshotEvery === 0 && steps < cfg.iters) {
        await drain(0);
        await o.onSnapshot(steps, await snapshot());
      }
    }
    await drain(0);
    const x = await snapshot();
    return { x, steps, records };
  } finally {
    await ring.destroy();
    await imageRing.destroy();
    scope.dispose();
  }
}
