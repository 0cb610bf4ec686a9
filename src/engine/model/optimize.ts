/**
 * The style-transfer loop: Adam on the image's pixels, on the GPU, with the
 * learning rate dropping to a tenth at `decayAt` and a clamp to valid pixels
 * after every step (reference.py's `run`). Iterations are submitted back to
 * back (each in as few command buffers as the submit bound allows:
 * src/engine/model/optimizer.ts); their losses are read back in batches
 * through a ring of staging buffers a batch late, so the GPU never waits for
 * the CPU, a batch sized so that a record arrives every couple of seconds.
 * With `keepState`, the optimiser's state is saved to the CPU at every
 * read-back, and a lost device ends the loop with a {@link LostRun} that
 * carries it, for the run to resume on a new device.
 * @module
 */
import { UserError } from "../errors.ts";
import { DeviceLostError, GpuOutOfMemoryError } from "../gpu/faults.ts";
import { ReadbackBatches } from "../gpu/scheduler.ts";
import type { TapName } from "./squeezenet.ts";
import { type Engine, lossTerms, type Segment, type Tensor } from "./stylizer.ts";
import { ImageReader } from "./image_buffers.ts";
import {
  Optimizer,
  type OptimizerOptions,
  type OptimizerState,
  type StyleConfig,
} from "./optimizer.ts";
import { StateKeeper } from "./state_keeper.ts";

export {
  ADAM,
  Optimizer,
  type OptimizerOptions,
  type OptimizerState,
  type StyleConfig,
  SUBMIT_MS,
} from "./optimizer.ts";

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
 * The most iterations whose loss terms are read back together: a map waits
 * for the GPU's queue, so one per iteration would drain the pipeline every
 * time (≈ 25 ms an iteration at 192×256 on lavapipe). Long iterations are
 * read back in smaller batches (see {@link LINE_MS}).
 */
export const READ_BATCH = 8;

/** The longest a run goes without a record read back (when its iterations allow). */
export const LINE_MS = 2000;

/**
 * The first iteration's submits are cut as if the adapter did this many
 * flops a millisecond (0.5 GFLOP/s: SwiftShader in a browser is about that
 * slow): before anything is measured, a huge iteration must not go to the
 * GPU in one submit.
 */
const FIRST_FLOPS_PER_MS = 5e5;

/** Losses of one iteration (before its step), as read back. */
export interface IterationRecord {
  /** Iteration index, 0-based. */
  i: number;
  loss: number;
  content: number;
  style: number;
  tv: number;
  /** The temporal term of a video frame (0 without). */
  temporal: number;
  /**
   * Wall time since the loop started when the iteration finished (the
   * batch's end as read back, shared evenly by its iterations).
   */
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
  /**
   * Save the optimiser's state at every read-back: a lost device then ends
   * the loop with a {@link LostRun} carrying the newest state.
   */
  keepState?: boolean;
  /** Iterations of the run before this loop (a fault plan counts over the run). */
  iterationOffset?: number;
  /** Milliseconds already spent on this loop before (a resumed loop's records continue). */
  elapsedMs?: number;
}

/** Result of {@link optimize}. */
export interface OptimizeResult {
  /** The final image (after the last step and clamp). */
  x: Tensor;
  /** Steps done (less than iters when stopped). */
  steps: number;
  /** One record per iteration. */
  records: IterationRecord[];
  /**
   * The longest submit measured (ms, awaited alone on the loop's measured
   * iterations; 0 when none was measured) and the submits of an iteration.
   */
  longestSubmitMs: number;
  submits: number;
}

/**
 * The device was lost in the loop: the newest saved state (null before the
 * first read-back) and the records read until then.
 */
export class LostRun extends DeviceLostError {
  /** The state to resume from. */
  readonly state: OptimizerState | null;
  /** The records read before the loss. */
  readonly records: IterationRecord[];
  /** Milliseconds the loop had run. */
  readonly elapsedMs: number;
  /** @param message the device's account of the loss */
  constructor(
    message: string,
    state: OptimizerState | null,
    records: IterationRecord[],
    elapsedMs: number,
  ) {
    super(message);
    this.name = "LostRun";
    this.state = state;
    this.records = records;
    this.elapsedMs = elapsedMs;
  }
}

/** Loss terms at the start of iteration `i`, from the loss partials. */
function record(
  i: number,
  parts: Float32Array,
  segments: readonly Segment[],
  ms: number,
): IterationRecord {
  const { loss, terms } = lossTerms(parts, segments);
  return { i, loss, ...terms, ms };
}

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
): UserError | null {
  const at = `iteration ${i + 1}`;
  for (const s of segments) {
    let sum = 0;
    for (let k = s.start; k < s.start + s.count; k++) sum += parts[k];
    if (!Number.isFinite(sum)) {
      return new UserError(
        `${at}: ${s.what} is ${sum} (beyond 32-bit floats); lower ${s.weight.name}`,
        [s.weight.setting],
      );
    }
  }
  if (new Uint32Array(parts.buffer, parts.byteOffset, parts.length)[flagIndex] !== 0) {
    return new UserError(
      `${at}: the gradient is not finite (beyond 32-bit floats); lower the loss weights`,
      ["content-weight", "style-weights", "tv-weight"],
    );
  }
  return null;
}

/**
 * The blended Gram targets: per layer, the (weighted) mean of each style's
 * Grams (`grams[k][l]`: style k's at layer l).
 */
export function blendGrams(grams: Tensor[][], blend?: number[]): Tensor[] {
  const w = blend ?? grams.map(() => 1);
  if (w.length !== grams.length) {
    throw new UserError(
      `${grams.length} style images need ${grams.length} blend weights, got ${w.length}`,
    );
  }
  const sum = w.reduce((a, b) => a + b, 0);
  if (!(sum > 0)) throw new UserError("style blend weights must not all be 0");
  return grams[0].map((g0, l) => {
    const acc = new Float32Array(g0.data.length);
    for (let k = 0; k < grams.length; k++) {
      const g = grams[k][l].data;
      for (let e = 0; e < acc.length; e++) acc[e] += g[e] * w[k] / sum;
    }
    return { shape: g0.shape, data: acc };
  });
}

/** Gram targets for style images: per layer, the (weighted) mean of each style's Gram. */
export async function styleTargets(
  engine: Engine,
  styles: Tensor[],
  layers: TapName[],
  blend?: number[],
): Promise<Tensor[]> {
  if (blend && blend.length !== styles.length) {
    throw new UserError(
      `${styles.length} style images need ${styles.length} blend weights, got ${blend.length}`,
    );
  }
  const grams = [];
  for (const s of styles) grams.push(await engine.tapGrams(s, layers));
  return blendGrams(grams, blend);
}

/** Reads the image after `steps` steps ({@link Optimizer.output}) back as a tensor. */
async function readImage(opt: Optimizer, reader: ImageReader, steps: number): Promise<Tensor> {
  const { image, scale } = opt.output(steps);
  const data = await reader.read(image);
  if (scale !== 1) { for (let k = 0; k < data.length; k++) data[k] *= scale; }
  return { shape: [1, 3, image.h, image.w], data };
}

/** How the loop reads back: batch sizes, and the batches flushed and not yet taken. */
class Batches {
  /** Iterations per batch now (1 until an iteration's time is known). */
  per = 1;
  /** Iteration indices of each batch flushed and not yet taken, and their current one. */
  queued: number[][] = [];
  current: number[] = [];
  /** When the last batch taken finished (ms since the loop started). */
  lastMs = 0;

  /** Sizes batches so that one finishes every {@link LINE_MS} or so. */
  fit(iterMs: number): void {
    this.per = Math.max(1, Math.min(READ_BATCH, Math.floor(LINE_MS / Math.max(iterMs, 1e-3))));
  }
}

/** One optimisation loop: its GPU state, its read-back, its saved state, its records. */
class Loop {
  readonly records: IterationRecord[] = [];
  readonly #o: OptimizeOptions;
  readonly #engine: Engine;
  readonly #opt: Optimizer;
  readonly #reads: ReadbackBatches;
  readonly #reader: ImageReader;
  readonly #keeper: StateKeeper | null;
  readonly #readerBytes: number;
  readonly #batches = new Batches();
  readonly #t0: number;
  readonly #first: number;
  /** Rejects when the device is lost. */
  readonly #lost: Promise<never>;
  lostMessage: string | null = null;
  /** The longest submit timed. */
  longest = 0;
  /** How the next iteration is timed (see {@link iteration}), and how often it was cut again. */
  #next: "no" | "submits" | "steps" = "no";
  #recuts = 0;
  steps: number;

  constructor(engine: Engine, opt: Optimizer, o: OptimizeOptions, lost: Promise<never>) {
    const device = engine.gpu.device;
    this.#o = o;
    this.#engine = engine;
    this.#opt = opt;
    this.#lost = lost;
    // The image's staging buffers, made before the loop (snapshots and the
    // result), counted in the engine's memory like the saved state's: either
    // may be what does not fit (GpuOutOfMemoryError, nothing left made).
    const pool = engine.ctx.pool;
    this.#readerBytes = opt.plan.x.bands.reduce((a, b) => a + b.buffer.size, 0);
    pool.trackExternal(this.#readerBytes, "image read-back");
    try {
      this.#keeper = o.keepState ? new StateKeeper(opt) : null;
    } catch (e) {
      pool.trackExternal(-this.#readerBytes);
      throw e;
    }
    this.#reader = new ImageReader(device, opt.plan.x);
    // The loss terms of every iteration, read back in batches.
    this.#reads = new ReadbackBatches(device, opt.plan.partsFloats * 4, READ_BATCH);
    this.#first = this.steps = o.resume?.steps ?? 0;
    this.#t0 = performance.now() - (o.elapsedMs ?? 0);
    // Before anything is measured: submits cut as if the adapter were slow.
    const flops = [opt.plan.prog, opt.step].flatMap((p) => p.steps)
      .reduce((a, st) => a + (st.kind === "dispatch" ? st.flops : 0), 0);
    opt.cutSubmits(engine.submitMs, flops / FIRST_FLOPS_PER_MS);
  }

  /** `p`, or the device's loss first. */
  live<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.#lost]);
  }

  /** Reads the oldest batch flushed: its records, with their iterations' finishing times. */
  async #take(): Promise<void> {
    const { plan } = this.#opt;
    const parts = await this.live(this.#reads.take());
    const b = this.#batches;
    const batch = b.queued.shift()!;
    const end = performance.now() - this.#t0;
    for (const [k, i] of batch.entries()) {
      const p = new Float32Array(parts[k]);
      const bad = nonFiniteReason(i, p, plan.segments, plan.flagIndex);
      if (bad) throw bad;
      // The batch's iterations finished one after another until its end.
      const r = record(i, p, plan.segments, b.lastMs + (end - b.lastMs) * (k + 1) / batch.length);
      this.records.push(r);
      this.#o.onRecord?.(r);
    }
    b.lastMs = end;
  }

  /** Ends the current batch and reads back all but `keep` of those in flight. */
  async flush(keep: number): Promise<void> {
    const b = this.#batches;
    if (b.current.length > 0) {
      b.queued.push(b.current);
      b.current = [];
      await this.live(this.#reads.flush());
    }
    while (this.#reads.inFlight > keep) await this.#take();
    if (keep === 0 && this.#keeper) await this.live(this.#keeper.settle());
  }

  /** A fault plan's lost device, at the start of the run's iteration `global` (1-based). */
  #fault(global: number): void {
    const at = this.#engine.faults.loseAt?.indexOf(global) ?? -1;
    if (at < 0) return;
    this.#engine.faults.loseAt!.splice(at, 1);
    this.#engine.gpu.loseDevice(`lost by STYLIZE_FAULT at iteration ${global}`);
  }

  /**
   * Submits iteration `i`; at a batch's end its state is saved (copied with
   * its last commands, or read now in pieces) and the batch flushed. The
   * first two iterations are batches of their own: the first's time cuts
   * the second's submits, which are timed one by one to cut the rest under
   * the bound.
   */
  async iteration(i: number): Promise<void> {
    const o = this.#o;
    // A device lost since the last iteration: nothing more goes to it.
    if (this.lostMessage !== null) throw new DeviceLostError(this.lostMessage);
    this.#fault((o.iterationOffset ?? 0) + i + 1);
    const steps = this.steps = i + 1;
    const iters = o.config.iters;
    const snap = o.onSnapshot && o.snapshotEvery && steps % o.snapshotEvery === 0 && steps < iters;
    const early = i <= this.#first + 1;
    const ends = early || snap || steps === iters ||
      this.#batches.current.length + 1 >= this.#batches.per;
    const keeper = ends ? this.#keeper : null;
    if (keeper?.inline) await this.live(keeper.settle());
    let commit = () => {};
    const t = performance.now();
    // The second iteration runs step by step, each step timed, which cuts
    // the next ones' submits; the third one's submits are timed to check them
    // (over the bound: steps timed and submits checked again, twice at most).
    const timing = this.#next;
    const times = await this.live(this.#opt.submit(i, (enc) => {
      this.#reads.record(enc, this.#opt.plan.parts);
      if (keeper?.inline) commit = keeper.record(enc, steps);
    }, timing));
    commit();
    if (keeper && !keeper.inline) await this.live(keeper.snapshot(steps));
    this.#batches.current.push(i);
    if (snap) {
      await this.flush(0);
      await o.onSnapshot!(steps, await this.image());
    } else if (ends) await this.flush(early ? 0 : 1);
    this.#timed(i, performance.now() - t, timing, times);
  }

  /**
   * What the timings of iteration `i` (which took `ms`) say: the first's
   * time cuts the second's submits (at half the bound: a flop is not as long
   * in every kernel); the second's steps were timed (the next cut is made);
   * a timed iteration's longest submit is kept, and over the bound the
   * steps are timed again.
   */
  #timed(i: number, ms: number, timing: string, times: number[]): void {
    const bound = this.#engine.submitMs;
    if (i === this.#first) {
      this.#opt.cutSubmits(bound / 2, ms);
      this.#batches.fit(ms);
      this.#next = "steps";
    }
    if (timing === "no") return;
    const most = Math.max(...times);
    this.longest = Math.max(this.longest, most);
    this.#batches.fit(times.reduce((a, b) => a + b, 0));
    if (timing === "steps") this.#next = "submits";
    else if (most > bound && this.#recuts < 2) {
      this.#recuts++;
      this.#next = "steps";
    } else this.#next = "no";
  }

  /** The image after the steps done (x, or the iterate average), read back. */
  image(): Promise<Tensor> {
    return this.live(readImage(this.#opt, this.#reader, this.steps));
  }

  /** The run's loss as a {@link LostRun}, with the newest state saved before it. */
  async lostRun(e: unknown): Promise<LostRun> {
    await this.#keeper?.settle().catch(() => {});
    return new LostRun(
      this.lostMessage ?? (e as Error).message,
      this.#keeper?.last ?? null,
      this.records,
      performance.now() - this.#t0,
    );
  }

  /** Frees the loop's staging buffers and the optimiser's own buffers. */
  async close(): Promise<void> {
    await this.#reads.destroy().catch(() => {});
    await this.#keeper?.destroy().catch(() => {});
    this.#reader.destroy();
    this.#engine.ctx.pool.trackExternal(-this.#readerBytes);
    this.#opt.dispose();
  }
}

/**
 * The optimiser and its loop; out of GPU memory for the loop's staging, the
 * engine's tiles are made smaller (freeing plan memory) and both made again.
 */
async function start(
  engine: Engine,
  o: OptimizeOptions,
  lost: Promise<never>,
): Promise<{ opt: Optimizer; loop: Loop }> {
  for (;;) {
    const opt = await Promise.race([Optimizer.create(engine, o), lost]);
    try {
      return { opt, loop: new Loop(engine, opt, o, lost) };
    } catch (e) {
      opt.dispose();
      if (!(e instanceof GpuOutOfMemoryError)) throw e;
      const [, , h, w] = o.content.shape;
      engine.shrinkTiles(
        h,
        w,
        engine.deepest(h, w, [o.config.contentLayer, ...o.config.styleLayers]),
        e,
      );
    }
  }
}

/**
 * Runs the optimisation loop on the GPU.
 * @throws {LostRun} when the device is lost (with `keepState`: the newest state)
 */
export async function optimize(engine: Engine, o: OptimizeOptions): Promise<OptimizeResult> {
  let lostMessage: string | null = null;
  const lost = engine.gpu.lost.then((m): never => {
    lostMessage = m;
    throw new DeviceLostError(m);
  });
  lost.catch(() => {});
  const { opt, loop } = await start(engine, o, lost);
  lost.catch(() => loop.lostMessage = lostMessage);
  o.onReady?.(opt);
  try {
    for (let i = loop.steps; i < o.config.iters; i++) {
      if (o.signal?.aborted) break;
      await loop.iteration(i);
    }
    await loop.flush(0);
    const x = await loop.image();
    const { records, steps, longest } = loop;
    return { x, steps, records, longestSubmitMs: longest, submits: opt.submits };
  } catch (e) {
    if (lostMessage === null && !(e instanceof DeviceLostError)) throw e;
    throw await loop.lostRun(e);
  } finally {
    await loop.close();
  }
}
