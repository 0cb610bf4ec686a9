/**
 * The style-transfer loop: Adam on the image's pixels, on the GPU, with the
 * learning rate dropping to a tenth at `decayAt` and a clamp to valid pixels
 * after every step (reference.py's `run`). Each iteration is one submission;
 * losses are read back through a ring of staging buffers a few iterations
 * late, so the GPU never waits for the CPU.
 * @module
 */
import { UserError } from "../errors.ts";
import { type Profiler, Program, ReadbackBatches } from "../gpu/scheduler.ts";
import { MEAN_BGR } from "../image/tensor.ts";
import { adamParams, adamStep } from "../ops/adam.ts";
import { Scope } from "../ops/context.ts";
import type { TapName } from "./squeezenet.ts";
import {
  type Engine,
  type LossPlan,
  type LossSpec,
  lossTerms,
  type Region,
  type Segment,
  type Tensor,
} from "./stylizer.ts";
import { type ImageBuffers, ImageReader, likeImage, writeImageBuffers } from "./image_buffers.ts";

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

/**
 * Iterations whose loss terms are read back together: a map waits for the
 * GPU's queue, so one per iteration would drain the pipeline every time
 * (≈ 25 ms an iteration at 192×256 on lavapipe).
 */
export const READ_BATCH = 8;

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

/**
 * The rate and ETA of a loop at `done` of `total` iterations, `ms` after it
 * started, the first iteration having ended at `firstMs`: from the
 * iterations after the first (which also compiles the kernels), so neither
 * counts the compilation; null until there is one.
 */
export function loopRate(
  done: number,
  total: number,
  ms: number,
  firstMs: number,
): { rate: number; eta: number } | null {
  if (done < 2 || !(ms > firstMs)) return null;
  const rate = (done - 1) / ((ms - firstMs) / 1000);
  return { rate, eta: (total - done) / rate };
}

/** Options of {@link optimize}. */
export interface OptimizeOptions extends OptimizerOptions {
  /** Called with each read-back record (in order). */
  onRecord?: (r: IterationRecord) => void;
  /** Iterations (1-based counts) after which `onSnapshot` receives the image. */
  snapshotEvery?: number;
  /** Receives the image after `i` steps. */
  onSnapshot?: (steps: number, x: Tensor) => Promise<void> | void;
  /** Stops after the current iteration when aborted. */
  signal?: AbortSignal;
  /** Called once the plans are built and the image uploaded, before the first iteration. */
  onReady?: (opt: Optimizer) => void;
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

/** Loss terms at the start of iteration `i`, from the loss partials. */
function record(
  i: number,
  parts: Float32Array,
  segments: readonly Segment[],
  t0: number,
): IterationRecord {
  const { loss, terms } = lossTerms(parts, segments);
  return { i, loss, ...terms, ms: performance.now() - t0 };
}

/** The weights to lower, by the kind of term that is not finite. */
const LOWER: Record<Segment["kind"], string> = {
  content: "the content weight (--content-weight)",
  style: "the style weights (--style-weights or --strength)",
  tv: "the TV weight (--tv-weight)",
  temporal: "the temporal weight (--temporal-weight)",
};

/**
 * Why iteration `i`'s read-back loss partials (and the Adam step's
 * non-finite-gradient flag at `flagIndex`) cannot go on: a term that is not
 * finite, named with the weight to lower; null when all are finite.
 */
export function nonFiniteReason(
  i: number,
  parts: Float32Array,
  segments: readonly Segment[],
  flagIndex: number,
): string | null {
  const at = `iteration ${i + 1}`;
  for (const s of segments) {
    let sum = 0;
    for (let k = s.start; k < s.start + s.count; k++) sum += parts[k];
    if (!Number.isFinite(sum)) {
      return `${at}: ${s.what} is ${sum} (beyond 32-bit floats); lower ${LOWER[s.kind]}`;
    }
  }
  if (new Uint32Array(parts.buffer, parts.byteOffset, parts.length)[flagIndex] !== 0) {
    return `${at}: the gradient is not finite (beyond 32-bit floats); lower the loss weights ` +
      "(--content-weight, --style-weights or --strength, --tv-weight)";
  }
  return null;
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
  const grams = [];
  for (const s of styles) grams.push(await engine.tapGrams(s, layers));
  for (const [i] of layers.entries()) {
    const acc = new Float32Array(grams[0][i].data.length);
    for (let k = 0; k < styles.length; k++) {
      const g = grams[k][i].data;
      for (let e = 0; e < acc.length; e++) acc[e] += g[e] * w[k] / sum;
    }
    out.push({ shape: grams[0][i].shape, data: acc });
  }
  return out;
}

/** Options of {@link Optimizer.create}. */
export interface OptimizerOptions {
  /** Preprocessed content image [1,3,H,W]. */
  content: Tensor;
  /** Target Grams per style layer (already blended); absent with `regions`. */
  styleTargets?: Tensor[];
  /**
   * Spatial control: each style's region (a mask at the content's size) and
   * its plain Grams, instead of `styleTargets` (src/engine/loss/guided_style.ts).
   */
  regions?: Region[];
  /** Starting image [1,3,H,W]; default the content. */
  init?: Tensor;
  config: StyleConfig;
  /**
   * Iterate averaging (reference.py's Ema): after each step and clamp,
   * a ← d·a + (1−d)·x on the GPU; the image read is a / (1 − d^t). Off when
   * absent or 0; d in [0, 1).
   */
  avgDecay?: number;
}

/**
 * The loop's GPU state: the loss-and-gradient plan, Adam's moments (and the
 * iterate average) and the recorded step, all allocated once.
 * {@link Optimizer.encode} records one whole iteration (forward, losses,
 * backward, Adam + clamp) into an encoder.
 */
export class Optimizer {
  /** The engine. */
  readonly engine: Engine;
  /** The loss plan (x, gradient, loss partials). */
  readonly plan: LossPlan;
  /** The Adam step program. */
  readonly step: Program;
  /** Hyper-parameters. */
  readonly config: StyleConfig;
  /** The iterate average's decay (0: none). */
  readonly avgDecay: number;
  #scope: Scope;
  #programs: Program[];
  /** Per band: its step's uniform buffer and element count. */
  #bands: { uniform: GPUBuffer; n: number; hw: number }[];
  #state: { m: ImageBuffers; v: ImageBuffers; avg: ImageBuffers | null };
  #lo = MEAN_BGR.map((mu) => -mu);
  #hi = MEAN_BGR.map((mu) => 255 - mu);

  private constructor(
    engine: Engine,
    plan: LossPlan,
    step: Program,
    config: StyleConfig,
    avgDecay: number,
    own: {
      scope: Scope;
      bands: { uniform: GPUBuffer; n: number; hw: number }[];
      state: { m: ImageBuffers; v: ImageBuffers; avg: ImageBuffers | null };
    },
  ) {
    this.engine = engine;
    this.plan = plan;
    this.step = step;
    this.#programs = [plan.prog, step];
    this.config = config;
    this.avgDecay = avgDecay;
    this.#scope = own.scope;
    this.#bands = own.bands;
    this.#state = own.state;
  }

  /** Computes the content target, builds the plans, and uploads the starting image. */
  static async create(engine: Engine, o: OptimizerOptions): Promise<Optimizer> {
    const cfg = o.config;
    const decay = o.avgDecay ?? 0;
    if (!(decay >= 0 && decay < 1)) throw new UserError(`avg decay ${decay} is not in [0, 1)`);
    const [, , h, w] = o.content.shape;
    const feats = await engine.features(o.content, [cfg.contentLayer]);
    const spec: LossSpec = {
      contentLayer: cfg.contentLayer,
      contentWeight: cfg.contentWeight,
      contentTarget: feats[cfg.contentLayer]!,
      styleLayers: cfg.styleLayers,
      styleWeights: cfg.styleWeights,
      styleTargets: o.styleTargets,
      regions: o.regions,
      tvWeight: cfg.tvWeight,
    };
    const plan = await engine.lossPlan(h, w, spec);
    plan.writeTargets(spec);
    const scope = new Scope(engine.ctx.pool);
    const step = new Program(engine.gpu.device);
    const m = likeImage(scope, plan.x, "adam.m");
    const v = likeImage(scope, plan.x, "adam.v");
    const avg = decay > 0 ? likeImage(scope, plan.x, "adam.avg") : null;
    // The flag the steps set when a gradient is not finite, cleared once per iteration.
    step.clear("adam.flag.clear", plan.parts, plan.flagIndex * 4, 4);
    const bands = [];
    for (const [k, b] of plan.x.bands.entries()) {
      const n = 3 * b.rows * w;
      const uniform = await adamStep(engine.ctx, scope, step, {
        label: plan.x.bands.length > 1 ? `adam.${k}` : "adam",
        n,
        grad: plan.grad.bands[k].buffer,
        x: b.buffer,
        m: m.bands[k].buffer,
        v: v.bands[k].buffer,
        flags: plan.parts,
        flagAt: plan.flagIndex,
        avg: avg?.bands[k].buffer,
      });
      bands.push({ uniform, n, hw: b.rows * w });
    }
    step.bindAll();
    const opt = new Optimizer(engine, plan, step, cfg, decay, {
      scope,
      bands,
      state: { m, v, avg },
    });
    opt.reset(o.init ?? o.content);
    return opt;
  }

  /** Number of pixels × channels of the image. */
  get size(): number {
    return 3 * this.plan.h * this.plan.w;
  }

  /** Restarts from image `x`: uploads it and zeroes Adam's moments (and the average). */
  reset(x: Tensor): void {
    const device = this.engine.gpu.device;
    writeImageBuffers(device.queue, this.plan.x, x.data);
    const enc = device.createCommandEncoder();
    const { m, v, avg } = this.#state;
    for (const img of [m, v, ...(avg ? [avg] : [])]) {
      for (const b of img.bands) enc.clearBuffer(b.buffer);
    }
    device.queue.submit([enc.finish()]);
  }

  /**
   * Writes the step parameters of iteration `i` (0-based) to the queue and
   * records the iteration into `enc`; submit `enc` before encoding the next.
   */
  encode(enc: GPUCommandEncoder, i: number, profiler?: Profiler): void {
    for (const prog of this.prepare(i)) prog.encode(enc, profiler);
  }

  /**
   * Writes iteration `i`'s Adam parameters and returns the programs of one
   * iteration in order (what {@link Optimizer.encode} records).
   */
  prepare(i: number): Program[] {
    const cfg = this.config;
    const lr = i >= cfg.decayAt ? cfg.lr / 10 : cfg.lr;
    for (const b of this.#bands) {
      this.engine.gpu.device.queue.writeBuffer(
        b.uniform,
        0,
        adamParams(
          b.n,
          b.hw,
          i + 1,
          lr,
          ADAM,
          this.#lo,
          this.#hi,
          this.plan.flagIndex,
          this.avgDecay,
        ),
      );
    }
    return this.#programs;
  }

  /**
   * The buffers the image read after `steps` steps comes from: x, or the
   * iterate average; and the factor it is multiplied by (the average's bias
   * correction 1 / (1 − d^steps)).
   */
  output(steps: number): { image: ImageBuffers; scale: number } {
    const avg = this.#state.avg;
    if (!avg || steps === 0) return { image: this.plan.x, scale: 1 };
    return { image: avg, scale: 1 / (1 - this.avgDecay ** steps) };
  }

  /** Frees the optimiser's own buffers (the plan stays cached in the engine). */
  dispose(): void {
    this.#scope.dispose();
  }
}

/** Reads the image after `steps` steps ({@link Optimizer.output}) back as a tensor. */
async function readImage(opt: Optimizer, reader: ImageReader, steps: number): Promise<Tensor> {
  const { image, scale } = opt.output(steps);
  const data = await reader.read(image);
  if (scale !== 1) { for (let k = 0; k < data.length; k++) data[k] *= scale; }
  return { shape: [1, 3, image.h, image.w], data };
}

/** Runs the optimisation loop on the GPU. */
export async function optimize(engine: Engine, o: OptimizeOptions): Promise<OptimizeResult> {
  const cfg = o.config;
  const device = engine.gpu.device;
  const opt = await Optimizer.create(engine, o);
  const { plan } = opt;
  // The loss terms of every iteration, read back READ_BATCH at a time (the
  // first alone, so the first record's time is the first iteration's).
  const reads = new ReadbackBatches(device, plan.partsFloats * 4, READ_BATCH);
  // The image's staging buffers, made before the loop (snapshots and the result).
  const reader = new ImageReader(device, plan.x);
  o.onReady?.(opt);
  const records: IterationRecord[] = [];
  const batches: number[][] = [];
  let batch: number[] = [];
  const t0 = performance.now();
  const take = async () => {
    const parts = await reads.take();
    for (const [k, i] of batches.shift()!.entries()) {
      const p = new Float32Array(parts[k]);
      const bad = nonFiniteReason(i, p, plan.segments, plan.flagIndex);
      if (bad) throw new UserError(bad);
      const r = record(i, p, plan.segments, t0);
      records.push(r);
      o.onRecord?.(r);
    }
  };
  const flush = async (keep: number) => {
    if (batch.length > 0) {
      batches.push(batch);
      batch = [];
      await reads.flush();
    }
    while (reads.inFlight > keep) await take();
  };
  try {
    let steps = 0;
    for (let i = 0; i < cfg.iters; i++) {
      if (o.signal?.aborted) break;
      const enc = device.createCommandEncoder();
      opt.encode(enc, i);
      reads.record(enc, plan.parts);
      device.queue.submit([enc.finish()]);
      batch.push(i);
      steps = i + 1;
      const snap = o.onSnapshot && o.snapshotEvery && steps % o.snapshotEvery === 0 &&
        steps < cfg.iters;
      if (snap) {
        await flush(0);
        await o.onSnapshot!(steps, await readImage(opt, reader, steps));
      } else if (i === 0) await flush(0);
      else if (reads.full) await flush(1);
    }
    await flush(0);
    const x = await readImage(opt, reader, steps);
    return { x, steps, records };
  } finally {
    await reads.destroy();
    reader.destroy();
    opt.dispose();
  }
}
