/**
 * What the engine computes without a loss: the network's features at taps,
 * the Gram matrices of a style image at its style layers (computed where the
 * features are; only the Grams are read back), and the Gram of a given
 * tensor — each whole, or over tiles when the image's activations do not fit
 * the buffer limit.
 * @module
 */
import { UserError } from "../errors.ts";
import type { FloatRange } from "../gpu/readback.ts";
import { Program } from "../gpu/scheduler.ts";
import type { Tensor } from "../image/types.ts";
import type { OpContext, Scope } from "../ops/context.ts";
import { view } from "../ops/context.ts";
import { gram, gramGeometry, gramReduce } from "../ops/gram.ts";
import type { Pooling } from "../ops/pool.ts";
import { repack } from "../loss/content.ts";
import { imageBuffers, writeImageBuffers } from "./image_buffers.ts";
import type { Plan } from "./plans.ts";
import {
  type Forward,
  layerDims,
  type NetWeights,
  recordForward,
  TAP_NAMES,
  tapLayerIndex,
  type TapName,
} from "./squeezenet.ts";
import {
  globalRect,
  recordTiledFeatures,
  recordTiledGrams,
  type TiledContext,
} from "./tiled_plan.ts";
import type { TileGrid } from "./tiles.ts";

/** What the feature programs need from the engine. */
export interface FeatureEngine {
  readonly gpu: { device: GPUDevice };
  readonly ctx: OpContext;
  readonly net: NetWeights;
  readonly pooling: Pooling;
  /** The cached plan for `key`, built on first use. */
  plan<P extends Plan>(key: string, build: (scope: Scope) => Promise<P>): Promise<P>;
  gridFor(h: number, w: number, upto: number): TileGrid | null;
  deepest(h: number, w: number, taps: TapName[]): number;
  /** Submits a program. */
  run(prog: Program): void;
  read(ranges: FloatRange[]): Promise<Float32Array[]>;
}

/** Throws unless `t` is a rank-`rank` tensor whose data matches its shape. */
export function checkTensor(t: Tensor, what: string, rank = 4): void {
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (t.shape.length !== rank || n !== t.data.length) {
    throw new UserError(
      `${what}: expected a ${rank}-d tensor whose data matches its shape, got shape [${t.shape}] ` +
        `with ${t.data.length} values`,
    );
  }
}

/** Checks an image tensor [1, 3, H, W]; returns its height and width. */
export function imageSize(x: Tensor, what: string): [number, number] {
  checkTensor(x, what);
  const [, c, h, w] = x.shape;
  if (c !== 3) throw new UserError(`${what} must have 3 channels, got ${c}`);
  return [h, w];
}

/** The recorder of a new program in `scope`. */
function recorder(e: FeatureEngine, scope: Scope, prog: Program): TiledContext {
  return { ctx: e.ctx, net: e.net, scope, prog, pooling: e.pooling };
}

/** The plan of a forward pass of an h×w image up to layer index `upto`. */
export function forwardPlan(
  e: FeatureEngine,
  h: number,
  w: number,
  upto: number,
): Promise<Plan & { fwd: Forward }> {
  return e.plan(`features:${h}x${w}:${upto}:${e.pooling}`, async (scope) => {
    const prog = new Program(e.gpu.device);
    const input = scope.floats(3 * h * w, "input");
    const fwd = await recordForward(e.ctx, scope, prog, e.net, input, h, w, upto, {
      pooling: e.pooling,
    });
    return { prog, scope, fwd };
  });
}

/** The features of `input` at `taps` (all that exist for its size when omitted). */
export async function features(
  e: FeatureEngine,
  input: Tensor,
  taps?: TapName[],
): Promise<Partial<Record<TapName, Tensor>>> {
  const [h, w] = imageSize(input, "features input");
  const dims = layerDims(h, w);
  const wanted = taps ?? TAP_NAMES.filter((t) => tapLayerIndex(t) < dims.length);
  const upto = e.deepest(h, w, wanted);
  const grid = e.gridFor(h, w, upto);
  if (grid) return await tiledFeatures(e, input, grid, wanted);
  const plan = await forwardPlan(e, h, w, upto);
  e.gpu.device.queue.writeBuffer(plan.fwd.input, 0, new Float32Array(input.data));
  e.run(plan.prog);
  const outs = wanted.map((t) => plan.fwd.outputs[tapLayerIndex(t)]);
  const data = await e.read(
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
async function tiledFeatures(
  e: FeatureEngine,
  input: Tensor,
  grid: TileGrid,
  wanted: TapName[],
): Promise<Partial<Record<TapName, Tensor>>> {
  const [h, w] = [grid.h, grid.w];
  const layers = [...new Set(wanted.map(tapLayerIndex))];
  const key = `features:${h}x${w}:${layers}:${e.pooling}:tiled`;
  const plan = await e.plan(key, async (scope) => {
    const prog = new Program(e.gpu.device);
    const x = imageBuffers(scope, h, w, "input");
    const outs = await recordTiledFeatures(recorder(e, scope, prog), grid, x, layers);
    return { prog, scope, x, outs };
  });
  writeImageBuffers(e.gpu.device.queue, plan.x, input.data);
  e.run(plan.prog);
  const full = layerDims(h, w);
  const data = await e.read(
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
          out.set(data[k].subarray(from, from + o.cols), c * d.h * d.w + (r.y0 + y) * d.w + r.x0);
        }
      }
    });
    result[t] = { shape: [1, d.c, d.h, d.w], data: out };
  }
  return result;
}

/** Runs a plan of Grams on `input` and reads them back. */
async function readGrams(
  e: FeatureEngine,
  plan: {
    prog: Program;
    x: GPUBuffer | Parameters<typeof writeImageBuffers>[1];
    grams: { buffer: GPUBuffer; c: number }[];
  },
  input: Tensor,
): Promise<Tensor[]> {
  if ("bands" in plan.x) writeImageBuffers(e.gpu.device.queue, plan.x, input.data);
  else e.gpu.device.queue.writeBuffer(plan.x, 0, new Float32Array(input.data));
  e.run(plan.prog);
  const data = await e.read(
    plan.grams.map((g) => ({ buffer: g.buffer, offset: 0, floats: g.c * g.c })),
  );
  return data.map((d, i) => ({ shape: [plan.grams[i].c, plan.grams[i].c], data: d }));
}

/**
 * Gram matrices [C, C] of the features of `input` (preprocessed BGR
 * [1,3,H,W]) at each of `taps`, computed where the features are (no
 * read-back of the features): what a style image contributes to the loss.
 */
export async function tapGrams(
  e: FeatureEngine,
  input: Tensor,
  taps: TapName[],
): Promise<Tensor[]> {
  const [h, w] = imageSize(input, "tapGrams input");
  const upto = e.deepest(h, w, taps);
  const grid = e.gridFor(h, w, upto);
  const plan = grid
    ? await tiledGramsPlan(e, grid, taps)
    : await e.plan(`grams:${h}x${w}:${taps.join(",")}:${e.pooling}`, async (scope) => {
      const prog = new Program(e.gpu.device);
      const x = scope.floats(3 * h * w, "input");
      const textured = new Set(taps.map(tapLayerIndex));
      const fwd = await recordForward(e.ctx, scope, prog, e.net, x, h, w, upto, {
        textured,
        transient: true,
        pooling: e.pooling,
      });
      const grams: { buffer: GPUBuffer; c: number }[] = [];
      for (const t of taps) {
        const o = fwd.outputs[tapLayerIndex(t)];
        const [ch, np] = [o.dims.c, o.dims.h * o.dims.w];
        const g = scope.floats(ch * ch, `${t}.gram`);
        const tex = fwd.textures[tapLayerIndex(t)] ?? undefined;
        await gram(e.ctx, scope, prog, {
          label: `${t}.gram`,
          c: ch,
          npix: np,
          f: view(o.buffer, 0, o.plane),
          tex,
          scratch: scope.temp(gramGeometry(e.ctx, ch, np, !!tex).scratch, `${t}.scratch`),
          gram: view(g),
        });
        grams.push({ buffer: g, c: ch });
      }
      return { prog, scope, x, grams };
    });
  return await readGrams(e, plan, input);
}

/** The plan of {@link tapGrams} over an image split by `grid`: the Grams summed over its tiles. */
function tiledGramsPlan(e: FeatureEngine, grid: TileGrid, taps: TapName[]) {
  const [h, w] = [grid.h, grid.w];
  const key = `grams:${h}x${w}:${taps.join(",")}:${e.pooling}:tiled`;
  return e.plan(key, async (scope) => {
    const prog = new Program(e.gpu.device);
    const x = imageBuffers(scope, h, w, "input");
    const layers = taps.map(tapLayerIndex);
    const sums = await recordTiledGrams(recorder(e, scope, prog), grid, x, layers, "grams");
    const grams: { buffer: GPUBuffer; c: number }[] = [];
    for (const [k, g] of sums.entries()) {
      const buffer = scope.floats(g.c * g.c, `${taps[k]}.gram`);
      await gramReduce(e.ctx, scope, prog, {
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
}

/** Gram matrix F·Fᵀ/(C·H·W) of features [1,C,H,W] → [C, C]. */
export async function gramOf(e: FeatureEngine, features: Tensor): Promise<Tensor> {
  checkTensor(features, "gram input");
  const [, c, h, w] = features.shape;
  if (c % 8) throw new UserError(`gram: ${c} channels; the Gram kernel needs a multiple of 8`);
  const npix = h * w;
  const plan = await e.plan(`gram:${c}:${npix}`, async (scope) => {
    const prog = new Program(e.gpu.device);
    const x = scope.floats(c * npix, "gram.f");
    const g = scope.floats(c * c, "gram.g");
    const scratch = scope.temp(gramGeometry(e.ctx, c, npix).scratch, "gram.scratch");
    await gram(e.ctx, scope, prog, { label: "gram", c, npix, f: view(x), scratch, gram: view(g) });
    return { prog, scope, x, grams: [{ buffer: g, c }] };
  });
  const [g] = await readGrams(e, plan, features);
  return g;
}
