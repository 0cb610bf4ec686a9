/**
 * The loop's GPU state: the loss-and-gradient plan, Adam's moments (and the
 * iterate average) and the recorded step, all allocated once; an iteration
 * recorded as a few command buffers, none estimated to run longer than a
 * bound (a browser's GPU watchdog, Windows' TDR, kill long submits); and the
 * state saved to the CPU and restored on a new device after a lost one.
 * @module
 */
import { UserError } from "../errors.ts";
import { GpuOutOfMemoryError, withMemoryScope } from "../gpu/faults.ts";
import { type Profiler, Program } from "../gpu/scheduler.ts";
import { MEAN_BGR } from "../image/tensor.ts";
import { adamParams, adamStep } from "../ops/adam.ts";
import { Scope } from "../ops/context.ts";
import type { TapName } from "./squeezenet.ts";
import type { TemporalSpec } from "../loss/temporal.ts";
import type { Engine, LossPlan, LossSpec, Region, Tensor } from "./stylizer.ts";
import { type ImageBuffers, likeImage, writeImageBuffers } from "./image_buffers.ts";

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

/** Adam's β1, β2, ε (PyTorch defaults). */
export const ADAM = { beta1: 0.9, beta2: 0.999, eps: 1e-8 };

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
  /** The state to start from instead of `init` (a run resumed on a new device). */
  resume?: OptimizerState;
  /** The temporal term of a video frame (src/engine/loss/temporal.ts). */
  temporal?: TemporalSpec["temporal"];
}

/**
 * The optimiser's state after `steps` steps, on the CPU: the image, Adam's
 * moments and the iterate average ([3][H][W] each) — all a new device needs
 * to continue the same trajectory.
 */
export interface OptimizerState {
  steps: number;
  x: Float32Array;
  m: Float32Array;
  v: Float32Array;
  avg: Float32Array | null;
}

/**
 * The longest a submit should run, in milliseconds: an iteration longer than
 * this is split into command buffers each estimated under it.
 */
export const SUBMIT_MS = 200;

/** Steps [from, to) of a program. */
interface Range {
  prog: Program;
  from: number;
  to: number;
}

/** One command buffer of an iteration: ranges of its programs, in order. */
type Chunk = Range[];

/** A step's estimated cost, in flops (copies and clears: their bytes as flops). */
function stepCost(s: Program["steps"][number]): number {
  if (s.kind === "dispatch") return s.flops;
  if (s.kind === "clear" || s.kind === "copy") return s.size;
  return 16 * s.width * s.height;
}

/**
 * The iteration's programs (in order) cut into chunks of at most `maxCost`
 * each (a step more costly alone is a chunk of its own), a step's cost
 * being `cost(step)` (default: {@link stepCost}).
 */
export function cutChunks(
  programs: Program[],
  maxCost: number,
  cost: (s: Program["steps"][number]) => number = stepCost,
): Chunk[] {
  const chunks: Chunk[] = [];
  let chunk: Chunk = [];
  let used = 0;
  for (const prog of programs) {
    let from = 0;
    prog.steps.forEach((s, k) => {
      const c = cost(s);
      if (used > 0 && used + c > maxCost) {
        if (k > from) chunk.push({ prog, from, to: k });
        chunks.push(chunk);
        [chunk, from, used] = [[], k, 0];
      }
      used += c;
    });
    if (from < prog.steps.length) chunk.push({ prog, from, to: prog.steps.length });
  }
  if (chunk.length > 0) chunks.push(chunk);
  return chunks;
}

/** The median of three waits for an empty submit's completion (ms). */
async function emptySubmitMs(device: GPUDevice): Promise<number> {
  const t: number[] = [];
  for (let k = 0; k < 3; k++) {
    const t0 = performance.now();
    device.queue.submit([device.createCommandEncoder().finish()]);
    await device.queue.onSubmittedWorkDone();
    t.push(performance.now() - t0);
  }
  return t.sort((a, b) => a - b)[1];
}

/**
 * The loop's GPU state (see the module doc). {@link Optimizer.submit}
 * records and submits one whole iteration (forward, losses, backward,
 * Adam + clamp).
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
  /** How the iteration is cut into submits (one until measured otherwise). */
  #chunks: Chunk[];

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
    this.#chunks = cutChunks(this.#programs, Infinity);
    this.config = config;
    this.avgDecay = avgDecay;
    this.#scope = own.scope;
    this.#bands = own.bands;
    this.#state = own.state;
  }

  /**
   * Computes the content target, builds the plans, and uploads the starting
   * image (or restores `o.resume`). Out of GPU memory, it asks the engine
   * for smaller tiles and builds again (see {@link Engine.shrinkTiles}).
   */
  static async create(engine: Engine, o: OptimizerOptions): Promise<Optimizer> {
    const decay = o.avgDecay ?? 0;
    if (!(decay >= 0 && decay < 1)) throw new UserError(`avg decay ${decay} is not in [0, 1)`);
    for (;;) {
      try {
        return await Optimizer.#build(engine, o, decay);
      } catch (e) {
        if (!(e instanceof GpuOutOfMemoryError)) throw e;
        const [, , h, w] = o.content.shape;
        const layers = [o.config.contentLayer, ...o.config.styleLayers];
        engine.shrinkTiles(h, w, engine.deepest(h, w, layers), e);
      }
    }
  }

  /** The loss spec of a run, with the content target. */
  static #spec(o: OptimizerOptions, contentTarget: Tensor): LossSpec {
    const cfg = o.config;
    return {
      contentLayer: cfg.contentLayer,
      contentWeight: cfg.contentWeight,
      contentTarget,
      styleLayers: cfg.styleLayers,
      styleWeights: cfg.styleWeights,
      styleTargets: o.styleTargets,
      regions: o.regions,
      tvWeight: cfg.tvWeight,
      temporal: o.temporal,
    };
  }

  static async #build(engine: Engine, o: OptimizerOptions, decay: number): Promise<Optimizer> {
    const cfg = o.config;
    const [, , h, w] = o.content.shape;
    const feats = await engine.features(o.content, [cfg.contentLayer]);
    const spec = Optimizer.#spec(o, feats[cfg.contentLayer]!);
    const plan = await engine.lossPlan(h, w, spec);
    plan.writeTargets(spec);
    const scope = new Scope(engine.ctx.pool);
    const device = engine.gpu.device;
    try {
      const opt = await withMemoryScope(device, () => engine.ctx.pool.heldBytes, async () => {
        const step = new Program(device);
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
        return new Optimizer(engine, plan, step, cfg, decay, {
          scope,
          bands,
          state: { m, v, avg },
        });
      });
      if (o.resume) opt.restore(o.resume);
      else opt.reset(o.init ?? o.content);
      return opt;
    } catch (e) {
      scope.dispose();
      throw e;
    }
  }

  /** Number of pixels × channels of the image. */
  get size(): number {
    return 3 * this.plan.h * this.plan.w;
  }

  /** The buffers of the state, in {@link OptimizerState}'s order: x, m, v, and the average. */
  get stateBuffers(): ImageBuffers[] {
    const { m, v, avg } = this.#state;
    return [this.plan.x, m, v, ...(avg ? [avg] : [])];
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

  /** Uploads a saved state (see {@link OptimizerState}): the next iteration is `state.steps`. */
  restore(state: OptimizerState): void {
    const queue = this.engine.gpu.device.queue;
    const { m, v, avg } = this.#state;
    writeImageBuffers(queue, this.plan.x, state.x);
    writeImageBuffers(queue, m, state.m);
    writeImageBuffers(queue, v, state.v);
    if (avg && state.avg) writeImageBuffers(queue, avg, state.avg);
  }

  /**
   * Cuts each iteration into submits estimated under `ms`, given that a
   * whole iteration took `iterMs` (its steps' costs taken as proportional to
   * their flops); returns how many there are.
   */
  cutSubmits(ms: number, iterMs: number): number {
    const total = this.#programs.flatMap((p) => p.steps).reduce((a, s) => a + stepCost(s), 0);
    const perMs = total / Math.max(iterMs, 1e-3);
    this.#chunks = cutChunks(this.#programs, Math.max(1, ms * perMs));
    return this.#chunks.length;
  }

  /** Submits of an iteration now. */
  get submits(): number {
    return this.#chunks.length;
  }

  /**
   * Writes the step parameters of iteration `i` (0-based) to the queue and
   * records the iteration into `enc`; submit `enc` before encoding the next
   * (one command buffer: for profiles and tests).
   */
  encode(enc: GPUCommandEncoder, i: number, profiler?: Profiler): void {
    for (const prog of this.prepare(i)) prog.encode(enc, profiler);
  }

  /**
   * Writes iteration `i`'s parameters and submits it as its chunks; `last`
   * records more into the last command buffer (the read-back copies).
   * Timed "submits": awaits every submit's completion and returns their
   * times; "steps": submits every step alone, timed, and cuts the next
   * iterations' submits from the steps' times ({@link cutSubmitsBySteps}).
   */
  async submit(
    i: number,
    last?: (enc: GPUCommandEncoder) => void,
    timed: "no" | "submits" | "steps" = "no",
  ): Promise<number[]> {
    const device = this.engine.gpu.device;
    this.prepare(i);
    const chunks = timed === "steps" ? cutChunks(this.#programs, 0, () => 1) : this.#chunks;
    const times: number[] = [];
    for (const [k, c] of chunks.entries()) {
      const enc = device.createCommandEncoder();
      for (const r of c) r.prog.encode(enc, undefined, r.from, r.to);
      if (k === chunks.length - 1) last?.(enc);
      const t0 = performance.now();
      device.queue.submit([enc.finish()]);
      if (timed !== "no") {
        await device.queue.onSubmittedWorkDone();
        times.push(performance.now() - t0);
      }
    }
    if (timed === "steps") {
      // Each time less the wait for an empty queue (the latency of a submit's completion).
      const latency = await emptySubmitMs(device);
      const perStep = new Map(
        chunks.map((c, k) => [c[0].prog.steps[c[0].from], Math.max(0, times[k] - latency)]),
      );
      this.#chunks = cutChunks(this.#programs, 0.6 * this.engine.submitMs, (s) => perStep.get(s)!);
    }
    return times;
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
