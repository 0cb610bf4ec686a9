/**
 * The library's entry point: an {@link Engine} holds the GPU and the
 * uploaded weights and answers feature, Gram and loss-and-gradient requests.
 * It is a facade over parts that each say what they are: the plan cache
 * (src/engine/model/plans.ts), the sizes and their tiles and memory
 * (sizing.ts), the feature programs (features.ts), the loss plans and their
 * terms (src/engine/loss/), and the read-back (src/engine/gpu/readback.ts).
 * @module
 */
import type { Gpu } from "../gpu/device.ts";
import { BufferPool, defaultMaxBufferBytes, type PoolStats } from "../gpu/pool.ts";
import { PipelineCache, type PipelineStats } from "../gpu/pipelines.ts";
import { type FloatRange, readRanges } from "../gpu/readback.ts";
import type { Program } from "../gpu/scheduler.ts";
import type { Tensor } from "../image/types.ts";
import { defaultTiles, OpContext, Scope, type TileTable } from "../ops/context.ts";
import type { Pooling } from "../ops/pool.ts";
import { checkSpec, type LossSpec, specKey } from "../loss/mod.ts";
import { type LossPlan, recordLossPlan } from "../loss/plan.ts";
import { type LossTerms, type Segment, TERM_KINDS } from "../loss/term.ts";
import {
  type FeatureEngine,
  features,
  forwardPlan,
  gramOf,
  imageSize,
  tapGrams,
} from "./features.ts";
import { imageRanges, joinBands, writeImageBuffers } from "./image_buffers.ts";
import { type Plan, PlanCache } from "./plans.ts";
import { deepestLayer, largestTile, minTilePixels, type SizeOptions, Sizing } from "./sizing.ts";
import { type Forward, layerDims, NetWeights, type TapName } from "./squeezenet.ts";
import { type Faults, formatBytes, GpuOutOfMemoryError } from "../gpu/faults.ts";
import { SUBMIT_MS } from "./optimizer.ts";
import { UserError } from "../errors.ts";
import { type TileGrid, tileGrid } from "./tiles.ts";
import type { ConvWeights } from "./weights.ts";

export type { Tensor } from "../image/types.ts";
export type { LossSpec } from "../loss/mod.ts";
export type { Region } from "../loss/guided_style.ts";
export type { LossTerms, Segment } from "../loss/term.ts";
export type { LossPlan } from "../loss/plan.ts";
export type { Plan } from "./plans.ts";

/** Result of {@link Stylizer.lossAndGradient}. */
export interface LossAndGradient {
  loss: number;
  terms: LossTerms;
  /** d loss / d x, shape of x. */
  gradient: Tensor;
}

/** What {@link Engine.create} builds an engine from (the platform's edge finds them). */
export interface EngineOptions {
  /** The acquired GPU (src/engine/gpu/device.ts's `acquireGpu`). */
  gpu: Gpu;
  /** SqueezeNet's weights, parsed and verified (src/engine/model/weights.ts). */
  weights: Map<string, ConvWeights>;
  /** Tile shapes of the kernels, replacing entries of the adapter's default table. */
  tiles?: Partial<TileTable>;
  /** Where `tiles` came from, for the progress header ("given", a file's path); default "default". */
  tilesSource?: string;
  /**
   * The largest buffer (bytes) plans may make, at most 128 MiB (the
   * default): images whose activations need larger ones are split into
   * tiles. Smaller values split smaller images (tests).
   */
  maxBufferBytes?: number;
  /** The most pixels a tile's network may run on (default: no limit but the buffers'). */
  tilePixels?: number;
  /**
   * The GPU memory (bytes) a run may plan on, at most ({@link Engine.estimateBytes});
   * sizes over it are refused by {@link Engine.checkImageSize}. Default: no limit (the
   * edge knows the machine: system memory for a CPU adapter, a budget for a page).
   */
  memoryBudget?: number;
  /** The network's pooling layers (every feature, Gram and loss): "max" (default) or "avg". */
  pooling?: Pooling;
  /**
   * The most GPU memory (bytes) the engine may hold: plans are tiled to fit
   * it, and an allocation past it fails as the device's out of memory does.
   */
  maxGpuMemory?: number;
  /** A fault plan (tests; src/engine/gpu/faults.ts), shared with a recovered run's new engine. */
  faults?: Faults;
  /** Receives one-line notices (a plan retried with smaller tiles). */
  onNotice?: (message: string) => void;
  /**
   * The longest an iteration's submits should run, in milliseconds (default
   * {@link SUBMIT_MS}): a browser's GPU watchdog or Windows' TDR kills longer ones.
   */
  submitMs?: number;
}

/** The style-transfer engine on one GPU. */
export interface Stylizer {
  /** input: preprocessed BGR image [1,3,H,W]; returns the requested taps (all if omitted). */
  features(input: Tensor, taps?: TapName[]): Promise<Partial<Record<TapName, Tensor>>>;
  /** Gram matrix F·Fᵀ/(C·H·W) of features [1,C,H,W] → [C, C]. */
  gram(features: Tensor): Promise<Tensor>;
  /** Total loss, its terms, and its gradient with respect to the image `x`. */
  lossAndGradient(x: Tensor, spec: LossSpec): Promise<LossAndGradient>;
  /** Frees the GPU resources. */
  dispose(): void;
}

/**
 * The total and the terms from a loss plan's partial sums (`parts`, as read
 * from {@link LossPlan.parts}), each segment summed in doubles.
 */
export function lossTerms(
  parts: Float32Array,
  segments: readonly Segment[],
): { loss: number; terms: LossTerms } {
  const terms = Object.fromEntries(TERM_KINDS.map((k) => [k, 0])) as LossTerms;
  for (const s of segments) {
    let sum = 0;
    for (let k = s.start; k < s.start + s.count; k++) sum += parts[k];
    terms[s.kind] += sum;
  }
  return { loss: TERM_KINDS.reduce((a, k) => a + terms[k], 0), terms };
}

/** Implementation of {@link Stylizer}; also used by the optimiser and the bench. */
export class Engine implements Stylizer, FeatureEngine {
  /** The GPU. */
  readonly gpu: Gpu;
  /** Op context (pool, pipelines, tiles). */
  readonly ctx: OpContext;
  /** Weights on the GPU. */
  readonly net: NetWeights;
  /** The network's pooling, in every plan. */
  readonly pooling: Pooling;
  /** Sizes: tiles, memory, checks. */
  readonly sizing: Sizing;
  /** The fault plan (empty: none). */
  readonly faults: Faults;
  /** The longest an iteration's submits should run (ms). */
  readonly submitMs: number;
  readonly #notice: (message: string) => void;
  readonly #plans: PlanCache;
  readonly #weightsScope: Scope;
  /** The memory budget the engine was made with (before any cap). */
  readonly #memoryBudget: number;

  /** The loss plan last asked for ({@link lossPlan}), for reports. */
  lastLossPlan: LossPlan | null = null;

  /** Why the device was lost, once it was (null while it works). */
  lostMessage: string | null = null;

  /**
   * Where the tile table came from: "default", "given" (options.tiles), or the
   * path of the tuned-tiles file it was read from.
   */
  tilesSource = "default";

  private constructor(o: EngineOptions, ctx: OpContext, net: NetWeights, scope: Scope) {
    this.gpu = o.gpu;
    this.ctx = ctx;
    this.net = net;
    this.#weightsScope = scope;
    this.pooling = o.pooling ?? "max";
    this.#memoryBudget = o.memoryBudget ?? Infinity;
    this.sizing = new Sizing(ctx, { tilePixels: o.tilePixels });
    this.faults = o.faults ?? {};
    this.submitMs = o.submitMs ?? SUBMIT_MS;
    this.#notice = o.onNotice ?? (() => {});
    o.gpu.lost.then((m) => this.lostMessage = m);
    this.#plans = new PlanCache(ctx);
    this.setMaxGpuMemory(o.maxGpuMemory);
    this.tilesSource = o.tilesSource ?? (o.tiles ? "given" : "default");
  }

  /** Uploads the weights to `o.gpu` and builds the op context with the tile table. */
  static create(o: EngineOptions): Engine {
    const { gpu } = o;
    const pool = new BufferPool(
      gpu.device,
      Math.min(defaultMaxBufferBytes(gpu.device), o.maxBufferBytes ?? Infinity),
    );
    const tiles = { ...defaultTiles(gpu.isFallback, gpu.cpuLanes), ...o.tiles };
    const ctx = new OpContext(gpu.device, pool, new PipelineCache(gpu.device), tiles);
    const scope = new Scope(pool);
    const net = NetWeights.upload(ctx, scope, o.weights);
    return new Engine(o, ctx, net, scope);
  }

  /**
   * Caps the GPU memory the engine may hold ({@link EngineOptions.maxGpuMemory};
   * undefined: no cap but the memory budget), from the next plan on: the
   * cached plans are dropped, sizes and tiles are checked against the cap,
   * and an allocation past it fails as the device's out of memory does.
   */
  setMaxGpuMemory(bytes: number | undefined): void {
    this.dropPlans();
    this.sizing.memoryBudget = Math.min(this.#memoryBudget, bytes ?? Infinity);
    this.ctx.pool.cap = Math.min(bytes ?? Infinity, this.faults.oomAbove ?? Infinity);
  }

  /** Pool counters. */
  get poolStats(): PoolStats {
    return this.ctx.pool.stats;
  }

  /** Pipeline-cache counters. */
  get pipelineStats(): PipelineStats {
    return this.ctx.pipelines.stats;
  }

  /** The largest byte range any launch of any plan binds. */
  get largestBinding(): number {
    return this.#plans.largestBinding;
  }

  /**
   * Disposes every cached plan and destroys the buffers they gave back (the
   * pool keeps none): memory a finished scale or size used goes back to the
   * device.
   */
  dropPlans(): void {
    this.#plans.clear();
    this.lastLossPlan = null;
    this.ctx.pool.trim();
  }

  /** Returns the cached plan for `key`, building it on first use (keeps the 6 newest). */
  plan<P extends Plan>(key: string, build: (scope: Scope) => Promise<P>): Promise<P> {
    return this.#plans.get(key, build);
  }

  /** See {@link Sizing.gridFor}. */
  gridFor(h: number, w: number, upto: number): TileGrid | null {
    return this.sizing.gridFor(h, w, upto);
  }

  /** See {@link Sizing.estimateBytes}. */
  estimateBytes(h: number, w: number, o: SizeOptions = {}): number {
    return this.sizing.estimateBytes(h, w, o);
  }

  /** See {@link Sizing.checkImageSize}. */
  checkImageSize(h: number, w: number, o: SizeOptions = {}): void {
    this.sizing.checkImageSize(h, w, o);
  }

  /**
   * After running out of GPU memory on an h×w image run to layer `upto`:
   * lowers the tiles' size so that the image splits into more tiles than
   * now, says so, and drops the plans; throws a {@link UserError} naming a
   * size that would fit when no smaller tiles are possible.
   */
  shrinkTiles(h: number, w: number, upto: number, e: GpuOutOfMemoryError): void {
    this.dropPlans();
    const grid = this.sizing.gridFor(h, w, upto);
    const before = grid ? grid.tiles.length : 1;
    const pixels = (grid ? largestTile(grid) : h * w) * 0.6;
    this.sizing.limitTilePixels(pixels);
    let next: TileGrid | null = null;
    try {
      if (pixels >= minTilePixels(h, w)) next = this.sizing.gridFor(h, w, upto);
    } catch {
      // No split fits the smaller tiles.
    }
    if (!next || next.tiles.length <= before) {
      throw new UserError(
        `GPU memory: out of memory at ${formatBytes(e.bytes)} even in ${before} ` +
          `tile${before > 1 ? "s" : ""}; ${this.#fitting(h, w, upto, e.bytes)}`,
        ["size"],
      );
    }
    this.#notice(
      `GPU memory: out of memory at ${
        formatBytes(e.bytes)
      }; retrying with ${next.tiles.length} tiles`,
    );
  }

  /**
   * What would fit in `bytes`: the largest output of the same shape by the
   * estimate, scaled by how far the estimate fell short at h×w (it did not
   * fit there: the real need was at least `bytes`), with 30% to spare. A
   * guess, said as one ("may fit"): under a 150 MiB cap it suggested 810 px
   * from 1024 px, which ran, and 1057 px from 2048 px, which did not.
   */
  #fitting(h: number, w: number, upto: number, bytes: number): string {
    const estimate = (fh: number, fw: number) => this.sizing.estimateBytes(fh, fw, { upto });
    let short = 1;
    try {
      short = Math.max(1, bytes / estimate(h, w));
    } catch {
      // No estimate at this size: none to scale by.
    }
    const room = 0.7 * bytes / short;
    let [lo, hi] = [0, 1];
    for (let k = 0; k < 20; k++) {
      const f = (lo + hi) / 2;
      const [fh, fw] = [Math.max(3, Math.round(h * f)), Math.max(3, Math.round(w * f))];
      let ok = false;
      try {
        ok = estimate(fh, fw) <= room;
      } catch {
        ok = false;
      }
      if (ok) lo = f;
      else hi = f;
    }
    const side = Math.floor(Math.max(h, w) * lo);
    return side >= 16
      ? `an output up to about ${side} px on its longer side may fit (--size)`
      : "no output size fits this GPU's memory";
  }

  /** Runs `fn`, shrinking the tiles of an h×w image and trying again while the GPU is out of memory. */
  async #retrying<T>(h: number, w: number, upto: number, fn: () => Promise<T>): Promise<T> {
    for (;;) {
      try {
        return await fn();
      } catch (e) {
        if (!(e instanceof GpuOutOfMemoryError)) throw e;
        this.shrinkTiles(h, w, upto, e);
      }
    }
  }

  /** Checks that taps exist for an h×w image; returns the deepest layer index needed. */
  deepest(h: number, w: number, taps: TapName[]): number {
    return deepestLayer(h, w, taps);
  }

  /** Submits `prog`'s commands as one command buffer. */
  run(prog: Program): void {
    const enc = this.gpu.device.createCommandEncoder();
    prog.encode(enc);
    this.gpu.device.queue.submit([enc.finish()]);
  }

  /** Reads several buffer ranges back (see src/engine/gpu/readback.ts). */
  read(ranges: FloatRange[]): Promise<Float32Array[]> {
    return readRanges(this.gpu.device, this.ctx.pool.maxBufferBytes, ranges);
  }

  /** The plan of a forward pass of an h×w image up to layer index `upto`. */
  forwardPlan(h: number, w: number, upto: number): Promise<Plan & { fwd: Forward }> {
    return forwardPlan(this, h, w, upto);
  }

  async features(input: Tensor, taps?: TapName[]): Promise<Partial<Record<TapName, Tensor>>> {
    const [h, w] = imageSize(input, "features input");
    const upto = taps ? this.deepest(h, w, taps) : layerDims(h, w).length - 1;
    return await this.#retrying(h, w, upto, () => features(this, input, taps));
  }

  /**
   * Gram matrices [C, C] of the features of `input` (preprocessed BGR
   * [1,3,H,W]) at each of `taps`: what a style image contributes to the loss.
   */
  async tapGrams(input: Tensor, taps: TapName[]): Promise<Tensor[]> {
    const [h, w] = imageSize(input, "tapGrams input");
    return await this.#retrying(h, w, this.deepest(h, w, taps), () => tapGrams(this, input, taps));
  }

  gram(features: Tensor): Promise<Tensor> {
    return gramOf(this, features);
  }

  /** Validates a spec against an h×w image and returns the deepest layer it needs. */
  checkSpec(h: number, w: number, spec: LossSpec): number {
    deepestLayer(h, w, [spec.contentLayer, ...spec.styleLayers]);
    return checkSpec(h, w, spec);
  }

  /** Builds (or fetches) the loss-and-gradient plan for an h×w image and `spec`. */
  async lossPlan(h: number, w: number, spec: LossSpec): Promise<LossPlan> {
    const upto = this.checkSpec(h, w, spec);
    return await this.#retrying(h, w, upto, () => this.#lossPlan(h, w, upto, spec));
  }

  async #lossPlan(h: number, w: number, upto: number, spec: LossSpec): Promise<LossPlan> {
    const key = JSON.stringify(["loss", h, w, this.pooling, specKey(spec)]);
    const grid = this.gridFor(h, w, upto) ?? tileGrid(h, w, upto, 1, 1);
    const plan = await this.plan(key, async (scope) => ({
      ...(await recordLossPlan(
        { ctx: this.ctx, net: this.net, scope, pooling: this.pooling },
        grid,
        spec,
      )),
      scope,
    }));
    this.lastLossPlan = plan;
    return plan;
  }

  async lossAndGradient(x: Tensor, spec: LossSpec): Promise<LossAndGradient> {
    const [h, w] = imageSize(x, "lossAndGradient x");
    const plan = await this.lossPlan(h, w, spec);
    plan.writeTargets(spec);
    writeImageBuffers(this.gpu.device.queue, plan.x, x.data);
    this.run(plan.prog);
    const [parts, ...g] = await this.read([
      { buffer: plan.parts, offset: 0, floats: plan.partsFloats },
      ...imageRanges(plan.grad),
    ]);
    return {
      ...lossTerms(parts, plan.segments),
      gradient: { shape: [1, 3, h, w], data: joinBands(plan.grad, g) },
    };
  }

  dispose(): void {
    this.#plans.clear();
    this.#weightsScope.dispose();
    this.ctx.pool.destroy();
    this.ctx.destroy();
    this.gpu.device.destroy();
  }
}
