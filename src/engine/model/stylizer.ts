/**
 * The library's entry point: a {@link Stylizer} holds the GPU, the uploaded
 * weights and cached plans (recorded programs with their pooled buffers, one
 * per input size and loss configuration), and answers feature, Gram and
 * loss-and-gradient requests.
 * @module
 */
import { UserError } from "../errors.ts";
import type { Gpu } from "../gpu/device.ts";
import { BufferPool, defaultMaxBufferBytes, GpuLimitError, type PoolStats } from "../gpu/pool.ts";
import { PipelineCache, type PipelineStats } from "../gpu/pipelines.ts";
import { Program } from "../gpu/scheduler.ts";
import {
  defaultTiles,
  type FeatureTexture,
  OpContext,
  Scope,
  type TileTable,
  type View,
  view,
} from "../ops/context.ts";
import { gram, GRAM_LOSS_PARTS, gramBackward, gramGeometry, gramReduce } from "../ops/gram.ts";
import { contentLoss, LOSS_PARTS } from "../ops/loss.ts";
import type { Pooling } from "../ops/pool.ts";
import {
  type ContentTerm,
  pointwiseInvocations,
  stridedBackwardInvocations,
  type TvTerm,
} from "../ops/conv.ts";
import {
  type Forward,
  type ForwardOptions,
  type FusedStyle,
  layerDims,
  NetWeights,
  recordBackward,
  recordForward,
  SQUEEZENET,
  TAP_NAMES,
  tapLayerIndex,
  type TapName,
} from "./squeezenet.ts";
import type { ConvWeights } from "./weights.ts";
import {
  type ImageBuffers,
  imageBuffers,
  imageRanges,
  joinBands,
  writeImageBuffers,
} from "./image_buffers.ts";
import { chooseGrid, type TileGrid } from "./tiles.ts";
import {
  globalRect,
  recordTiledFeatures,
  recordTiledGrams,
  recordTiledLoss,
  type TiledContext,
  tileLargestBuffer,
  tileTarget,
} from "./tiled_plan.ts";

/** A dense float tensor; images and features are NCHW with batch 1. */
export type Tensor = { shape: number[]; data: Float32Array };

/** What {@link Stylizer.lossAndGradient} minimises. */
export interface LossSpec {
  contentLayer: TapName;
  contentWeight: number;
  /** Target features at `contentLayer`. */
  contentTarget: Tensor;
  styleLayers: TapName[];
  styleWeights: number[];
  /** Target Grams [C, C], one per style layer. */
  styleTargets: Tensor[];
  tvWeight: number;
}

/** The value of each loss term. */
export interface LossTerms {
  content: number;
  style: number;
  tv: number;
}

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

/** A recorded program with the buffers it owns. */
export interface Plan {
  prog: Program;
  scope: Scope;
}

/**
 * A loss-and-gradient plan: the forward, losses and backward of one
 * configuration at one image size, on the whole image at once or split into
 * tiles (src/engine/model/tiles.ts) when its activations would not fit the
 * buffer limit.
 */
export interface LossPlan extends Plan {
  h: number;
  w: number;
  /** How many tiles the image is split into (1: the whole image at once). */
  tiles: number;
  /** Image x [3][H][W] (input of the forward), in bands of rows. */
  x: ImageBuffers;
  /** d loss / d x, banded as x. */
  grad: ImageBuffers;
  /**
   * The loss terms' partial sums, summed on the CPU when read (see
   * {@link Engine.terms}): segment t of `segments` ([start, count] in
   * floats) holds term t's (content, style 1..L, tv).
   */
  parts: GPUBuffer;
  segments: [number, number][];
  /** Floats of `parts` the segments span, and the flag after them. */
  partsFloats: number;
  /**
   * Index in `parts` of a u32 flag (after the segments) the Adam step sets to
   * 1 when the gradient it reads is not finite.
   */
  flagIndex: number;
  /** Uploads a spec's targets (content features and Gram matrices) into the plan. */
  writeTargets(spec: LossSpec): void;
}

/** The whole-image plan's own buffers (what {@link LossPlan.writeTargets} writes). */
interface WholeTargets {
  fwd: Forward;
  contentTarget: GPUBuffer;
  /** The content target again in a texture (written with it), when the device allows one. */
  contentTargetTex: FeatureTexture | null;
  styleTargets: GPUBuffer[];
}

/** Copies `c` planes of `n` values `from` elements apart into planes `to` apart. */
function repack(
  data: ArrayLike<number>,
  c: number,
  from: number,
  to: number,
): Float32Array<ArrayBuffer> {
  const out = new Float32Array(c * to);
  const n = Math.min(from, to);
  for (let k = 0; k < c; k++) {
    for (let i = 0; i < n; i++) out[k * to + i] = data[k * from + i];
  }
  return out;
}

function checkTensor(t: Tensor, what: string, rank = 4): void {
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (t.shape.length !== rank || n !== t.data.length) {
    throw new UserError(
      `${what}: expected a ${rank}-d tensor whose data matches its shape, got shape [${t.shape}] ` +
        `with ${t.data.length} values`,
    );
  }
}

/** Implementation of {@link Stylizer}; also used by the optimiser and the bench. */
export class Engine implements Stylizer {
  /** The GPU. */
  readonly gpu: Gpu;
  /** Op context (pool, pipelines). */
  readonly ctx: OpContext;
  /** Weights on the GPU. */
  readonly net: NetWeights;
  /** The network's pooling, in every plan. */
  readonly pooling: Pooling;
  #weightsScope: Scope;
  #plans = new Map<string, Plan>();
  #tilePixels = Infinity;
  #memoryBudget = Infinity;
  #largestBinding = 0;

  /** The loss plan last asked for ({@link lossPlan}), for reports. */
  lastLossPlan: LossPlan | null = null;

  /** The largest byte range any launch of any plan binds. */
  get largestBinding(): number {
    return this.#largestBinding;
  }

  private constructor(
    gpu: Gpu,
    ctx: OpContext,
    net: NetWeights,
    scope: Scope,
    pooling: Pooling,
  ) {
    this.gpu = gpu;
    this.ctx = ctx;
    this.net = net;
    this.#weightsScope = scope;
    this.pooling = pooling;
  }

  /**
   * Where the tile table came from: "default", "given" (options.tiles), or the
   * path of the tuned-tiles file it was read from.
   */
  tilesSource = "default";

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
    const engine = new Engine(gpu, ctx, net, scope, o.pooling ?? "max");
    engine.tilesSource = o.tilesSource ?? (o.tiles ? "given" : "default");
    engine.#tilePixels = o.tilePixels ?? Infinity;
    engine.#memoryBudget = o.memoryBudget ?? Infinity;
    return engine;
  }

  /** Pool counters. */
  get poolStats(): PoolStats {
    return this.ctx.pool.stats;
  }

  /** Pipeline-cache counters. */
  get pipelineStats(): PipelineStats {
    return this.ctx.pipelines.stats;
  }

  /**
   * Disposes every cached plan and destroys the buffers they gave back (the
   * pool keeps none): memory a finished scale or size used goes back to the
   * device.
   */
  dropPlans(): void {
    for (const p of this.#plans.values()) p.scope.dispose();
    this.#plans.clear();
    this.lastLossPlan = null;
    this.ctx.pool.trim();
  }

  /** Returns the cached plan for `key`, building it on first use (keeps the 6 newest). */
  async plan<P extends Plan>(key: string, build: (scope: Scope) => Promise<P>): Promise<P> {
    const hit = this.#plans.get(key);
    if (hit) {
      this.#plans.delete(key);
      this.#plans.set(key, hit);
      return hit as P;
    }
    const scope = new Scope(this.ctx.pool);
    let p: P;
    try {
      p = await build(scope);
      scope.finalize(this.gpu.device, [p.prog]);
      p.prog.bindAll();
      this.#largestBinding = Math.max(this.#largestBinding, p.prog.largestBinding());
    } catch (e) {
      scope.dispose();
      if (e instanceof GpuLimitError) {
        throw new UserError(`image too large for this GPU: ${e.message}`);
      }
      throw e;
    }
    this.#plans.set(key, p);
    while (this.#plans.size > 6) {
      const [k, old] = this.#plans.entries().next().value!;
      old.scope.dispose();
      this.#plans.delete(k);
    }
    return p;
  }

  /**
   * How an h×w image runs to layer `upto`: null when whole (every buffer of
   * its plans within the limit), else the grid of tiles it is split into.
   * Throws a {@link UserError} when not even tiles fit.
   */
  gridFor(h: number, w: number, upto: number): TileGrid | null {
    const max = this.ctx.pool.maxBufferBytes;
    const fits = (th: number, tw: number) =>
      th * tw <= this.#tilePixels && tileLargestBuffer(this.ctx, th, tw, upto) <= max;
    if (fits(h, w)) return null;
    const grid = chooseGrid(h, w, upto, fits);
    if (!grid) {
      throw new UserError(
        `image too large: no split of ${w}×${h} into tiles fits buffers of ` +
          `${(max / 2 ** 20).toFixed(0)} MiB; use a smaller --size`,
      );
    }
    return grid;
  }

  /**
   * The GPU memory (bytes) a run on an h×w image is expected to take at its
   * peak: the image-sized buffers (the image, its gradient and Adam's two
   * moments, 12 bytes a pixel each, a fifth with iterate averaging), the
   * content target (the content layer's output), and the plans of the
   * largest tile run whole (≈ 800 bytes per pixel of the tile's input,
   * measured with the memory plan: 2048×1536 in two row tiles peaked at
   * 1.57 GiB).
   */
  estimateBytes(
    h: number,
    w: number,
    o: { contentLayer?: TapName; avg?: boolean; upto?: number } = {},
  ): number {
    const dims = layerDims(h, w);
    const upto = Math.min(o.upto ?? tapLayerIndex("fire5"), dims.length - 1);
    const content = dims[Math.min(tapLayerIndex(o.contentLayer ?? "fire2"), dims.length - 1)];
    const grid = this.gridFor(h, w, upto);
    const tile = grid
      ? Math.max(...grid.tiles.map((t) => (t.input.y1 - t.input.y0) * (t.input.x1 - t.input.x0)))
      : h * w;
    return 12 * h * w * (o.avg ? 5 : 4) + 4 * content.c * content.h * content.w + 800 * tile;
  }

  /**
   * Throws a {@link UserError} when an h×w image is too small for the network,
   * cannot be run even in tiles (see {@link gridFor}), or is expected to take
   * more GPU memory than the engine's budget ({@link estimateBytes}).
   */
  checkImageSize(
    h: number,
    w: number,
    o: { upto?: number; contentLayer?: TapName; avg?: boolean } = {},
  ): void {
    const upto = o.upto ?? tapLayerIndex("fire5");
    const dims = layerDims(h, w);
    if (dims.length === 0) throw new UserError(`a ${h}×${w} image is too small (at least 3×3)`);
    const gib = (n: number) => `${(n / 2 ** 30).toFixed(1)} GiB`;
    // Before the grid: the image-sized buffers alone say no to huge sizes at once.
    if (24 * h * w > this.#memoryBudget) {
      throw new UserError(
        `image too large for this GPU: ${w}×${h} needs over ${gib(24 * h * w)} of GPU memory, ` +
          `over the ${gib(this.#memoryBudget)} it may use; use a smaller --size`,
      );
    }
    const need = this.estimateBytes(h, w, { ...o, upto });
    if (need > this.#memoryBudget) {
      throw new UserError(
        `image too large for this GPU: ${w}×${h} needs about ${gib(need)} of GPU memory, ` +
          `over the ${gib(this.#memoryBudget)} it may use; use a smaller --size`,
      );
    }
  }

  /** Checks that taps exist for an h×w image; returns the deepest layer index needed. */
  deepest(h: number, w: number, taps: TapName[]): number {
    const dims = layerDims(h, w);
    let upto = 0;
    for (const t of taps) {
      const i = tapLayerIndex(t);
      if (i < 0) throw new UserError(`unknown layer "${t}"; layers: ${TAP_NAMES.join(", ")}`);
      if (i >= dims.length) {
        throw new UserError(
          `layer ${t} does not exist for a ${h}×${w} image (too small; ` +
            `${dims.length ? "deepest is " + SQUEEZENET[dims.length - 1].name : "no layer fits"})`,
        );
      }
      upto = Math.max(upto, i);
    }
    return upto;
  }

  /** Submits `prog`'s commands as one command buffer. */
  run(prog: Program): void {
    const enc = this.gpu.device.createCommandEncoder();
    prog.encode(enc);
    this.gpu.device.queue.submit([enc.finish()]);
  }

  /**
   * Reads several buffer ranges back: one staging buffer and one map for as
   * many ranges as fit the buffer limit together.
   */
  async read(
    ranges: { buffer: GPUBuffer; offset: number; floats: number }[],
  ): Promise<Float32Array[]> {
    const max = this.ctx.pool.maxBufferBytes / 4;
    const out: Float32Array[] = [];
    for (let k = 0; k < ranges.length;) {
      let n = 0;
      let end = k;
      while (end < ranges.length && (end === k || n + ranges[end].floats <= max)) {
        n += ranges[end++].floats;
      }
      out.push(...await this.#readBatch(ranges.slice(k, end)));
      k = end;
    }
    return out;
  }

  async #readBatch(ranges: { buffer: GPUBuffer; offset: number; floats: number }[]) {
    const total = ranges.reduce((a, r) => a + r.floats, 0);
    const staging = this.gpu.device.createBuffer({
      size: Math.max(4, total * 4),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const enc = this.gpu.device.createCommandEncoder();
    let at = 0;
    for (const r of ranges) {
      if (r.floats > 0) {
        enc.copyBufferToBuffer(r.buffer, r.offset * 4, staging, at * 4, r.floats * 4);
      }
      at += r.floats;
    }
    this.gpu.device.queue.submit([enc.finish()]);
    await staging.mapAsync(GPUMapMode.READ);
    const all = new Float32Array(staging.getMappedRange().slice(0));
    staging.destroy();
    at = 0;
    return ranges.map((r) => {
      const part = all.slice(at, at + r.floats);
      at += r.floats;
      return part;
    });
  }

  /** The operations a tiled program is recorded with. */
  #tiled(scope: Scope, prog: Program): TiledContext {
    return { ctx: this.ctx, net: this.net, scope, prog, pooling: this.pooling };
  }

  /**
   * Records the forward pass of an h×w image in `input` up to layer index
   * `upto` with this engine's weights and pooling (see squeezenet.ts's
   * `recordForward`; `opts.textured`: the layers whose outputs get texture
   * copies; `opts.transient`: activations as transients).
   */
  #recordForward(
    scope: Scope,
    prog: Program,
    input: GPUBuffer,
    h: number,
    w: number,
    upto: number,
    opts: Omit<ForwardOptions, "pooling"> = {},
  ): Promise<Forward> {
    const { ctx, net, pooling } = this;
    return recordForward(ctx, scope, prog, net, input, h, w, upto, { ...opts, pooling });
  }

  /** The plan of a forward pass of an h×w image up to layer index `upto`. */
  forwardPlan(h: number, w: number, upto: number): Promise<Plan & { fwd: Forward }> {
    return this.plan(`features:${h}x${w}:${upto}:${this.pooling}`, async (scope) => {
      const prog = new Program(this.gpu.device);
      const input = scope.floats(3 * h * w, "input");
      const fwd = await this.#recordForward(scope, prog, input, h, w, upto);
      return { prog, scope, fwd };
    });
  }

  async features(input: Tensor, taps?: TapName[]): Promise<Partial<Record<TapName, Tensor>>> {
    checkTensor(input, "features input");
    const [, c, h, w] = input.shape;
    if (c !== 3) throw new UserError(`features input must have 3 channels, got ${c}`);
    const dims = layerDims(h, w);
    const wanted = taps ?? TAP_NAMES.filter((t) => tapLayerIndex(t) < dims.length);
    const upto = this.deepest(h, w, wanted);
    const grid = this.gridFor(h, w, upto);
    if (grid) return await this.#tiledFeatures(input, grid, wanted);
    const plan = await this.forwardPlan(h, w, upto);
    this.gpu.device.queue.writeBuffer(plan.fwd.input, 0, new Float32Array(input.data));
    this.run(plan.prog);
    const outs = wanted.map((t) => plan.fwd.outputs[tapLayerIndex(t)]);
    const data = await this.read(
      outs.map((o) => ({ buffer: o.buffer, offset: 0, floats: o.dims.c * o.plane })),
    );
    const result: Partial<Record<TapName, Tensor>> = {};
    wanted.forEach((t, i) => {
      const d = outs[i].dims;
      result[t] = {
        shape: [1, d.c, d.h, d.w],
        data: repack(data[i], d.c, outs[i].plane, d.h * d.w),
      };
    });
    return result;
  }

  /** {@link features} of an image split by `grid`: each tile's owned part, read back and placed. */
  async #tiledFeatures(
    input: Tensor,
    grid: TileGrid,
    wanted: TapName[],
  ): Promise<Partial<Record<TapName, Tensor>>> {
    const [h, w] = [grid.h, grid.w];
    const layers = [...new Set(wanted.map(tapLayerIndex))];
    const key = `features:${h}x${w}:${layers}:${this.pooling}:tiled`;
    const plan = await this.plan(key, async (scope) => {
      const prog = new Program(this.gpu.device);
      const x = imageBuffers(scope, h, w, "input");
      const outs = await recordTiledFeatures(this.#tiled(scope, prog), grid, x, layers);
      return { prog, scope, x, outs };
    });
    writeImageBuffers(this.gpu.device.queue, plan.x, input.data);
    this.run(plan.prog);
    const full = layerDims(h, w);
    const data = await this.read(
      plan.outs.map((o) => ({
        buffer: o.buffer,
        offset: 0,
        floats: full[o.layer].c * o.rows * o.cols,
      })),
    );
    const result: Partial<Record<TapName, Tensor>> = {};
    for (const t of wanted) {
      const i = tapLayerIndex(t);
      const d = full[i];
      const out = new Float32Array(d.c * d.h * d.w);
      plan.outs.forEach((o, k) => {
        if (o.layer !== i) return;
        const r = globalRect(o.tile, i);
        for (let c = 0; c < d.c; c++) {
          for (let y = 0; y < o.rows; y++) {
            const from = (c * o.rows + y) * o.cols;
            out.set(
              data[k].subarray(from, from + o.cols),
              c * d.h * d.w + (r.y0 + y) * d.w + r.x0,
            );
          }
        }
      });
      result[t] = { shape: [1, d.c, d.h, d.w], data: out };
    }
    return result;
  }

  /**
   * Gram matrices [C, C] of the features of `input` (preprocessed BGR
   * [1,3,H,W]) at each of `taps`, computed where the features are (no
   * readback of the features): what a style image contributes to the loss.
   */
  async tapGrams(input: Tensor, taps: TapName[]): Promise<Tensor[]> {
    checkTensor(input, "tapGrams input");
    const [, c, h, w] = input.shape;
    if (c !== 3) throw new UserError(`tapGrams input must have 3 channels, got ${c}`);
    const upto = this.deepest(h, w, taps);
    const grid = this.gridFor(h, w, upto);
    if (grid) return await this.#tiledGrams(input, grid, taps);
    const key = `grams:${h}x${w}:${taps.join(",")}:${this.pooling}`;
    const plan = await this.plan(key, async (scope) => {
      const prog = new Program(this.gpu.device);
      const input = scope.floats(3 * h * w, "input");
      const textured = new Set(taps.map(tapLayerIndex));
      const fwd = await this.#recordForward(scope, prog, input, h, w, upto, {
        textured,
        transient: true,
      });
      const grams: { buffer: GPUBuffer; c: number }[] = [];
      for (const t of taps) {
        const o = fwd.outputs[tapLayerIndex(t)];
        const [ch, np] = [o.dims.c, o.dims.h * o.dims.w];
        const g = scope.floats(ch * ch, `${t}.gram`);
        const tex = fwd.textures[tapLayerIndex(t)] ?? undefined;
        await gram(this.ctx, scope, prog, {
          label: `${t}.gram`,
          c: ch,
          npix: np,
          f: view(o.buffer, 0, o.plane),
          tex,
          scratch: scope.temp(gramGeometry(this.ctx, ch, np, !!tex).scratch, `${t}.scratch`),
          gram: view(g),
        });
        grams.push({ buffer: g, c: ch });
      }
      return { prog, scope, fwd, grams };
    });
    this.gpu.device.queue.writeBuffer(plan.fwd.input, 0, new Float32Array(input.data));
    this.run(plan.prog);
    const data = await this.read(
      plan.grams.map((g) => ({ buffer: g.buffer, offset: 0, floats: g.c * g.c })),
    );
    return data.map((d, i) => ({ shape: [plan.grams[i].c, plan.grams[i].c], data: d }));
  }

  /** {@link tapGrams} of an image split by `grid`: the Grams summed over its tiles. */
  async #tiledGrams(input: Tensor, grid: TileGrid, taps: TapName[]): Promise<Tensor[]> {
    const [h, w] = [grid.h, grid.w];
    const key = `grams:${h}x${w}:${taps.join(",")}:${this.pooling}:tiled`;
    const plan = await this.plan(key, async (scope) => {
      const prog = new Program(this.gpu.device);
      const t = this.#tiled(scope, prog);
      const x = imageBuffers(scope, h, w, "input");
      const layers = taps.map(tapLayerIndex);
      const sums = await recordTiledGrams(t, grid, x, layers, "grams");
      const grams: { buffer: GPUBuffer; c: number }[] = [];
      for (const [k, g] of sums.entries()) {
        const buffer = scope.floats(g.c * g.c, `${taps[k]}.gram`);
        await gramReduce(this.ctx, scope, prog, {
          label: `${taps[k]}.gram`,
          c: g.c,
          n: g.n,
          geo: g.geo,
          scratch: g.acc,
          gram: view(buffer),
        });
        grams.push({ buffer, c: g.c });
      }
      return { prog, scope, x, grams };
    });
    writeImageBuffers(this.gpu.device.queue, plan.x, input.data);
    this.run(plan.prog);
    const data = await this.read(
      plan.grams.map((g) => ({ buffer: g.buffer, offset: 0, floats: g.c * g.c })),
    );
    return data.map((d, i) => ({ shape: [plan.grams[i].c, plan.grams[i].c], data: d }));
  }

  async gram(features: Tensor): Promise<Tensor> {
    checkTensor(features, "gram input");
    const [, c, h, w] = features.shape;
    if (c % 8) throw new UserError(`gram: ${c} channels; the Gram kernel needs a multiple of 8`);
    const npix = h * w;
    const plan = await this.plan(`gram:${c}:${npix}`, async (scope) => {
      const prog = new Program(this.gpu.device);
      const f = scope.floats(c * npix, "gram.f");
      const g = scope.floats(c * c, "gram.g");
      const scratch = scope.temp(gramGeometry(this.ctx, c, npix).scratch, "gram.scratch");
      await gram(this.ctx, scope, prog, {
        label: "gram",
        c,
        npix,
        f: view(f),
        scratch,
        gram: view(g),
      });
      return { prog, scope, f, g };
    });
    this.gpu.device.queue.writeBuffer(plan.f, 0, new Float32Array(features.data));
    this.run(plan.prog);
    const [data] = await this.read([{ buffer: plan.g, offset: 0, floats: c * c }]);
    return { shape: [c, c], data };
  }

  /** Validates a spec against an h×w image and returns the deepest layer it needs. */
  checkSpec(h: number, w: number, spec: LossSpec): number {
    const n = spec.styleLayers.length;
    if (spec.styleWeights.length !== n || spec.styleTargets.length !== n) {
      throw new UserError(
        `${n} style layers need ${n} style weights and targets, got ${spec.styleWeights.length} ` +
          `and ${spec.styleTargets.length}`,
      );
    }
    for (const v of [spec.contentWeight, spec.tvWeight, ...spec.styleWeights]) {
      if (!Number.isFinite(v) || v < 0) throw new UserError(`loss weights must be ≥ 0, got ${v}`);
    }
    const upto = this.deepest(h, w, [spec.contentLayer, ...spec.styleLayers]);
    const dims = layerDims(h, w);
    const cd = dims[tapLayerIndex(spec.contentLayer)];
    if (spec.contentTarget.data.length !== cd.c * cd.h * cd.w) {
      throw new UserError(
        `content target must have the shape of ${spec.contentLayer} [1,${cd.c},${cd.h},${cd.w}], ` +
          `got [${spec.contentTarget.shape}]`,
      );
    }
    spec.styleLayers.forEach((l, i) => {
      const c = dims[tapLayerIndex(l)].c;
      if (spec.styleTargets[i].data.length !== c * c) {
        throw new UserError(
          `style target for ${l} must be [${c},${c}], got [${spec.styleTargets[i].shape}]`,
        );
      }
    });
    return upto;
  }

  /** Builds (or fetches) the loss-and-gradient plan for an h×w image and `spec`. */
  async lossPlan(h: number, w: number, spec: LossSpec): Promise<LossPlan> {
    const upto = this.checkSpec(h, w, spec);
    const key = JSON.stringify([
      "loss",
      h,
      w,
      spec.contentLayer,
      spec.contentWeight,
      spec.styleLayers,
      spec.styleWeights,
      spec.tvWeight,
      this.pooling,
    ]);
    const grid = this.gridFor(h, w, upto);
    const plan = await this.plan(
      key,
      (scope) =>
        grid
          ? this.#buildTiledLossPlan(scope, grid, spec)
          : this.#buildLossPlan(scope, h, w, upto, spec),
    );
    this.lastLossPlan = plan;
    return plan;
  }

  async #buildTiledLossPlan(scope: Scope, grid: TileGrid, spec: LossSpec): Promise<LossPlan> {
    const prog = new Program(this.gpu.device);
    const [h, w] = [grid.h, grid.w];
    const x = imageBuffers(scope, h, w, "x");
    const grad = imageBuffers(scope, h, w, "x.grad");
    const t = await recordTiledLoss(this.#tiled(scope, prog), grid, x, grad, spec);
    const queue = this.gpu.device.queue;
    const cIdx = tapLayerIndex(spec.contentLayer);
    const full = layerDims(h, w)[cIdx];
    return {
      prog,
      scope,
      h,
      w,
      tiles: grid.tiles.length,
      x,
      grad,
      parts: t.parts,
      segments: t.segments,
      partsFloats: t.partsFloats,
      flagIndex: t.flagIndex,
      writeTargets: (s: LossSpec) => {
        for (const target of t.contentTargets) {
          if (target) {
            queue.writeBuffer(target.buffer, 0, tileTarget(s.contentTarget.data, full, target));
          }
        }
        s.styleTargets.forEach((g, i) =>
          queue.writeBuffer(t.styleTargets[i], 0, new Float32Array(g.data))
        );
      },
    };
  }

  async #buildLossPlan(
    scope: Scope,
    h: number,
    w: number,
    upto: number,
    spec: LossSpec,
  ): Promise<LossPlan> {
    const { ctx } = this;
    const prog = new Program(this.gpu.device);
    const x = scope.floats(3 * h * w, "x");
    const grad = scope.floats(3 * h * w, "x.grad");
    // The style layers' outputs are copied into textures for their Grams,
    // the content layer's for the content term's F (and its ReLU mask).
    const textured = new Set(spec.styleLayers.map(tapLayerIndex));
    if (spec.contentWeight > 0) textured.add(tapLayerIndex(spec.contentLayer));
    const fwd = await this.#recordForward(scope, prog, x, h, w, upto, {
      textured,
      transient: true,
    });
    // Partial sums: content, each style layer, tv.
    const segments: [number, number][] = [];
    let at = 0;
    const seg = (count: number) => {
      segments.push([at, count]);
      at += count;
      return at - count;
    };
    const cIdx = tapLayerIndex(spec.contentLayer);
    const cOut = fwd.outputs[cIdx];
    // The content term's partials: LOSS_PARTS from its own launch, or one per
    // invocation of the 1×1 launch it is fused into (see fuseContent).
    const fusedParts = pointwiseInvocations(ctx, cOut.dims.c, cOut.plane);
    const contentCap = spec.contentWeight > 0 ? Math.max(LOSS_PARTS, fusedParts) : 0;
    const contentPart = seg(contentCap);
    segments[0][1] = Math.min(contentCap, LOSS_PARTS);
    const stylePart = spec.styleLayers.map((_, i) =>
      seg(spec.styleWeights[i] > 0 ? GRAM_LOSS_PARTS : 0)
    );
    // The TV term's partials: one per invocation of the launch that writes
    // the image gradient, which it is fused into (see fuseTv).
    const tvPart = seg(spec.tvWeight > 0 ? stridedBackwardInvocations(ctx, h, w) : 0);
    const flagIndex = at;
    const parts = scope.floats(at + 1, "loss.parts");
    const contentTarget = scope.floats(cOut.dims.c * cOut.plane, "content.target");
    // P again in a texture (written with the targets), for a fused content term.
    const contentTargetTex = scope.featureTexture(
      ctx.device,
      cOut.dims.c * cOut.plane,
      "content.target.tex",
    );
    const styleTargets = spec.styleLayers.map((l) => {
      const c = fwd.outputs[tapLayerIndex(l)].dims.c;
      return scope.floats(c * c, `${l}.gram.target`);
    });
    // Indices of the style terms (with a weight) at layer i.
    const styleAt = (i: number) =>
      spec.styleLayers.flatMap((l, k) =>
        tapLayerIndex(l) === i && spec.styleWeights[k] > 0 ? [k] : []
      );
    const inject = async (i: number, g: GPUBuffer, relu: View | null, fresh: boolean) => {
      const out = fwd.outputs[i];
      const d = out.dims;
      const F = view(out.buffer, 0, out.plane);
      const G = view(g, 0, out.plane);
      const styles = styleAt(i);
      const content = i === cIdx && spec.contentWeight > 0 && !contentFused;
      // The ReLU backward is fused into the last loss write: the content
      // term's when no style term follows (relu is the layer's output, F).
      const contentMasks = content && styles.length === 0 && relu !== null &&
        relu.buffer === out.buffer && relu.offset === 0;
      if (content) {
        await contentLoss(ctx, scope, prog, {
          label: `${spec.contentLayer}.content`,
          c: d.c,
          h: d.h,
          w: d.w,
          f: F,
          target: contentTarget,
          weight: spec.contentWeight,
          grad: G,
          parts: view(parts, contentPart),
          reluMask: contentMasks,
        });
      }
      for (const s of styles) {
        if (styleFused.has(s)) continue;
        const label = `${spec.styleLayers[s]}.style`;
        const dgram = await styleGram(i, s);
        await gramBackward(ctx, scope, prog, {
          label: `${label}.gram.back`,
          c: d.c,
          h: d.h,
          w: d.w,
          f: F,
          dgram,
          grad: G,
          // The first write of a gradient nothing else wrote (see overwrites).
          accumulate: !(fresh && s === styles[0]),
          // The layer's ReLU backward, fused into the last write of its gradient.
          maskOut: s === styles.at(-1) && relu ? relu : undefined,
          tex: fwd.textures[i] ?? undefined,
        });
      }
      return contentMasks || (styles.length > 0 && relu !== null);
    };
    // Style term s at layer i: its Gram, loss partials and dG (returned).
    const styleGram = async (i: number, s: number): Promise<GPUBuffer> => {
      const d = fwd.outputs[i].dims;
      const label = `${spec.styleLayers[s]}.style`;
      const npix = d.h * d.w;
      const dgram = scope.weights(d.c * d.c, `${label}.dgram`, true);
      const tex = fwd.textures[i] ?? undefined;
      await gram(ctx, scope, prog, {
        label: `${label}.gram`,
        c: d.c,
        npix,
        f: view(fwd.outputs[i].buffer, 0, fwd.outputs[i].plane),
        tex,
        scratch: scope.temp(gramGeometry(ctx, d.c, npix, !!tex).scratch, `${label}.scratch`),
        loss: {
          target: styleTargets[s],
          weight: spec.styleWeights[s],
          dgram,
          parts: view(parts, stylePart[s]),
        },
      });
      return dgram;
    };
    // A style term alone at its layer: its Gram backward goes into the 1×1
    // launch that writes the layer's gradient last, when there is one.
    const styleFused = new Set<number>();
    const fuseStyle = async (i: number): Promise<FusedStyle | null> => {
      const styles = styleAt(i);
      if (styles.length !== 1 || (i === cIdx && spec.contentWeight > 0)) return null;
      styleFused.add(styles[0]);
      const out = fwd.outputs[i];
      return {
        f: view(out.buffer, 0, out.plane),
        dgram: await styleGram(i, styles[0]),
        c: out.dims.c,
        tex: fwd.textures[i] ?? undefined,
      };
    };
    // The content term alone at its layer goes into the 1×1 launch that
    // writes the layer's gradient last, when there is one.
    let contentFused = false;
    const fuseContent = (i: number): ContentTerm | null => {
      if (i !== cIdx || !(spec.contentWeight > 0) || styleAt(i).length > 0) return null;
      contentFused = true;
      segments[0][1] = fusedParts;
      return {
        target: contentTarget,
        targetTex: contentTargetTex ?? undefined,
        weight: spec.contentWeight,
        npix: cOut.dims.h * cOut.dims.w,
        parts: view(parts, contentPart),
      };
    };
    // The TV term goes into the launch that writes the image's gradient.
    let tvFused = false;
    const fuseTv = (): TvTerm | null => {
      if (!(spec.tvWeight > 0)) return null;
      tvFused = true;
      return { x, weight: spec.tvWeight, parts: view(parts, tvPart) };
    };
    const hasLoss = (i: number) => (i === cIdx && spec.contentWeight > 0) || styleAt(i).length > 0;
    // Style terms come first at a layer without a content term: the first
    // Gram backward can overwrite a gradient nothing else wrote.
    const overwrites = (i: number) =>
      !(i === cIdx && spec.contentWeight > 0) && styleAt(i).length > 0;
    await recordBackward(ctx, scope, prog, this.net, fwd, grad, {
      inject,
      hasLoss,
      overwrites,
      fuseContent,
      fuseStyle,
      fuseTv,
    });
    if (spec.tvWeight > 0 && !tvFused) {
      throw new Error("internal: the TV term found no launch writing the image gradient");
    }
    const own: WholeTargets = { fwd, contentTarget, contentTargetTex, styleTargets };
    const whole = (buffer: GPUBuffer): ImageBuffers => ({
      h,
      w,
      bands: [{ y0: 0, rows: h, buffer }],
    });
    return {
      prog,
      scope,
      h,
      w,
      tiles: 1,
      x: whole(x),
      grad: whole(grad),
      parts,
      segments,
      partsFloats: at + 1,
      flagIndex,
      writeTargets: (s: LossSpec) => this.#writeWholeTargets(own, s),
    };
  }

  /** Uploads the spec's targets into a whole-image plan's target buffers. */
  #writeWholeTargets(plan: WholeTargets, spec: LossSpec): void {
    const q = this.gpu.device.queue;
    const c = plan.fwd.outputs[tapLayerIndex(spec.contentLayer)];
    const np = c.dims.h * c.dims.w;
    const p = repack(spec.contentTarget.data, c.dims.c, np, c.plane);
    q.writeBuffer(plan.contentTarget, 0, p);
    const tex = plan.contentTargetTex;
    if (tex) {
      // The texture holds P's vec4s in order, whole rows (zeros past P).
      const data = new Float32Array(tex.floats);
      data.set(p);
      q.writeTexture({ texture: tex.texture }, data, { bytesPerRow: tex.width * 16 }, [
        tex.width,
        tex.height,
      ]);
    }
    spec.styleTargets.forEach((t, i) =>
      q.writeBuffer(plan.styleTargets[i], 0, new Float32Array(t.data))
    );
  }

  /**
   * The total and the terms from a loss plan's partial sums (`parts`, as
   * read from {@link LossPlan.parts}), each segment summed in doubles.
   */
  static terms(
    parts: Float32Array,
    segments: [number, number][],
  ): { loss: number; terms: LossTerms } {
    const s = segments.map(([start, count]) => {
      let sum = 0;
      for (let k = start; k < start + count; k++) sum += parts[k];
      return sum;
    });
    const styleCount = segments.length - 2;
    let style = 0;
    for (let i = 0; i < styleCount; i++) style += s[1 + i];
    const content = s[0];
    const tv = s[styleCount + 1];
    return { loss: content + style + tv, terms: { content, style, tv } };
  }

  async lossAndGradient(x: Tensor, spec: LossSpec): Promise<LossAndGradient> {
    checkTensor(x, "lossAndGradient x");
    const [, c, h, w] = x.shape;
    if (c !== 3) throw new UserError(`x must have 3 channels, got ${c}`);
    const plan = await this.lossPlan(h, w, spec);
    plan.writeTargets(spec);
    writeImageBuffers(this.gpu.device.queue, plan.x, x.data);
    this.run(plan.prog);
    const [parts, ...g] = await this.read([
      { buffer: plan.parts, offset: 0, floats: plan.partsFloats },
      ...imageRanges(plan.grad),
    ]);
    return {
      ...Engine.terms(parts, plan.segments),
      gradient: { shape: [1, 3, h, w], data: joinBands(plan.grad, g) },
    };
  }

  dispose(): void {
    for (const p of this.#plans.values()) p.scope.dispose();
    this.#plans.clear();
    this.#weightsScope.dispose();
    this.ctx.pool.destroy();
    this.ctx.destroy();
    this.gpu.device.destroy();
  }
}
