/**
 * Pooling wrapper over src/engine/shaders/pool.wgsl: 3×3 stride 2, ceil mode,
 * max (forward with argmax, backward) and average (forward, backward).
 * @module
 */
import pool from "../shaders/pool.wgsl" with { type: "text" };
import shift4 from "../shaders/shift4.wgsl" with { type: "text" };
import texel from "../shaders/texel.wgsl" with { type: "text" };
import type { Binding, Program } from "../gpu/scheduler.ts";
import {
  checkTextureHolds,
  type FeatureTexture,
  type OpContext,
  type Scope,
  textureShift,
  type View,
} from "./context.ts";

/**
 * The network's pooling: "max" (SqueezeNet's own) or "avg", each window's
 * mean over its elements inside the input (PyTorch's avg_pool2d, ceil mode,
 * padding 0).
 */
export type Pooling = "max" | "avg";

/** Output length of a ceil-mode pooling (PyTorch's rule, no padding). */
export function poolOut(n: number, k = 3, stride = 2): number {
  if (n < k) return 0;
  let o = Math.ceil((n - k) / stride) + 1;
  if ((o - 1) * stride >= n) o--;
  return o;
}

/** A pooling's geometry: channels and input size. */
export interface PoolShape {
  c: number;
  h: number;
  w: number;
}

/** Outputs (forward) or 2×2 blocks (backward) per invocation along a row. */
const Q = 8;

/** Records one pool.wgsl launch over `rows` rows of `nseg` segments per channel. */
async function launch(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  o: {
    label: string;
    entry: "forward" | "backward";
    shape: PoolShape;
    input: View;
    output: View;
    /** Max pooling's argmax; null for average pooling. */
    argmax: GPUBuffer | null;
    rows: number;
    nseg: number;
    flops: number;
    /** Plane strides on the input-size and output-size sides. */
    hPlane: number;
    oPlane: number;
    /** A texture copy of the input's buffer (forward only). */
    xTex?: FeatureTexture;
  },
): Promise<void> {
  const xt = o.xTex ? 1 : 0;
  const avg = o.argmax === null ? 1 : 0;
  const pipeline = await ctx.pipelines.get({
    name: "pool.wgsl",
    source: `${pool}\n${shift4}\n${texel}`,
    template: { Q, XT: xt, AVG: avg },
    entry: o.entry,
  });
  const words = new Uint32Array([
    o.shape.c,
    o.shape.h,
    o.shape.w,
    poolOut(o.shape.h),
    poolOut(o.shape.w),
    o.input.offset,
    o.output.offset,
    o.nseg,
    o.hPlane,
    o.oPlane,
    textureShift(o.xTex),
    0,
  ]);
  const u = ctx.uniform(scope, words, `${o.label}.params`);
  const bindings: Binding[] = o.entry === "forward"
    ? [u, null, o.output.buffer, o.argmax, xt ? null : o.input.buffer, null, o.xTex?.view ?? null]
    : [u, null, o.output.buffer, null, o.input.buffer, o.argmax];
  prog.dispatch(o.label, pipeline, bindings, [
    Math.ceil(o.shape.c * o.rows * o.nseg / 64),
  ], o.flops);
}

/** What a pooling's forward reads and writes. */
export interface PoolForward {
  /** The launch's name (profiles, errors). */
  label: string;
  /** Channels and input size. */
  shape: PoolShape;
  /** The input. */
  x: View;
  /** The pooled output. */
  out: View;
  /** A copy of all of x's buffer in a texture, made before: x is fetched from it. */
  xTex?: FeatureTexture;
}

/** What a pooling's backward reads and writes. */
export interface PoolBackward {
  /** The launch's name (profiles, errors). */
  label: string;
  /** Channels and input size. */
  shape: PoolShape;
  /** The output's gradient. */
  dy: View;
  /** The input's gradient: every element is written. */
  dx: View;
}

/**
 * Appends max pooling `x` → `out`, recording the argmax into `argmax` (u32 per
 * output, laid out as `out`, its plane stride included).
 */
export function maxPool(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  o: PoolForward & { argmax: GPUBuffer },
): Promise<void> {
  return poolForward(ctx, scope, prog, o);
}

/**
 * Appends average pooling `x` → `out`: each window's sum over its elements
 * inside the input, divided by their count.
 */
export function avgPool(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  o: PoolForward,
): Promise<void> {
  return poolForward(ctx, scope, prog, { ...o, argmax: null });
}

/** Either pooling's forward: max with an `argmax`, average with null. */
async function poolForward(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  o: PoolForward & { argmax: GPUBuffer | null },
): Promise<void> {
  const [oh, ow] = [poolOut(o.shape.h), poolOut(o.shape.w)];
  const hPlane = o.x.plane ?? o.shape.h * o.shape.w;
  checkTextureHolds(o.xTex, o.x.offset + o.shape.c * hPlane, o.label, "x");
  await launch(ctx, scope, prog, {
    ...o,
    entry: "forward",
    input: o.x,
    output: o.out,
    hPlane,
    oPlane: o.out.plane ?? oh * ow,
    rows: oh,
    nseg: Math.ceil(ow / Q),
    flops: 9 * o.shape.c * oh * ow,
  });
}

/** Appends the max-pooling backward `dy` → `dx`, routed by the forward's argmax. */
export function maxPoolBackward(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  o: PoolBackward & { argmax: GPUBuffer },
): Promise<void> {
  return poolBackward(ctx, scope, prog, o);
}

/**
 * Appends the average-pooling backward `dy` → `dx`: each element gets the dy
 * of every window that holds it, divided by that window's count.
 */
export function avgPoolBackward(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  o: PoolBackward,
): Promise<void> {
  return poolBackward(ctx, scope, prog, { ...o, argmax: null });
}

/** Either pooling's backward: max with an `argmax`, average with null. */
async function poolBackward(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  o: PoolBackward & { argmax: GPUBuffer | null },
): Promise<void> {
  await launch(ctx, scope, prog, {
    ...o,
    entry: "backward",
    input: o.dy,
    output: o.dx,
    hPlane: o.dx.plane ?? o.shape.h * o.shape.w,
    oPlane: o.dy.plane ?? poolOut(o.shape.h) * poolOut(o.shape.w),
    rows: Math.ceil(o.shape.h / 2),
    nseg: Math.ceil(Math.ceil(o.shape.w / 2) / Q),
    flops: o.shape.c * o.shape.h * o.shape.w,
  });
}
