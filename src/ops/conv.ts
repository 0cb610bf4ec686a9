/**
 * Convolution wrapper over src/shaders/conv.wgsl: forward with fused bias and
 * ReLU, the same kernel for stride-1 input gradients and Gram backward, and
 * the strided input gradient (conv1).
 * @module
 */
import source from "../shaders/conv.wgsl" with { type: "text" };
import type { Program } from "../gpu/scheduler.ts";
import type { OpContext, Scope, View } from "./context.ts";

/** Output length of a convolution or pooling along one axis (floor mode). */
export function convOut(n: number, k: number, stride: number, pad: number): number {
  return Math.floor((n + 2 * pad - k) / stride) + 1;
}

/** Register and workgroup tile of the implicit-GEMM kernel. */
export interface Tile {
  /** Output channels per invocation (1..8). */
  TM: number;
  /** Output pixels per invocation (1..8). */
  TN: number;
  /** Invocations along pixels. */
  WGX: number;
  /** Invocations along channels. */
  WGY: number;
}

/** The default tile for an M (channels) × N (pixels) output, tuned on lavapipe. */
export function chooseTile(m: number, _n: number): Tile {
  const TM = 4;
  const TN = 4;
  let WGY = 1;
  while (WGY < 16 && WGY * TM < m) WGY *= 2;
  return { TM, TN, WGX: 64 / WGY >= 1 ? Math.max(1, 64 / WGY) : 1, WGY };
}

/** A convolution's geometry. */
export interface ConvShape {
  cin: number;
  cout: number;
  /** Input height and width. */
  h: number;
  w: number;
  kh: number;
  kw: number;
  stride: number;
  pad: number;
}

/** Options of {@link conv2d}. */
export interface Conv2dOptions {
  label: string;
  shape: ConvShape;
  x: View;
  /** Kernel [KH][KW][Cin][Cout]. */
  weights: GPUBuffer;
  bias?: GPUBuffer;
  out: View;
  relu?: boolean;
  /** Add into `out` instead of overwriting it. */
  accumulate?: boolean;
  /** Read the input as x·(maskIn > 0) (ReLU backward fused into the load). */
  maskIn?: View;
  /** Multiply the result by (maskOut > 0). */
  maskOut?: View;
  tile?: Tile;
}

function params(
  s: ConvShape,
  oh: number,
  ow: number,
  o: Conv2dOptions,
): Uint32Array<ArrayBuffer> {
  return new Uint32Array([
    s.cin,
    s.cout,
    s.h,
    s.w,
    oh,
    ow,
    o.x.offset,
    o.out.offset,
    o.maskIn?.offset ?? 0,
    o.maskOut?.offset ?? 0,
  ]);
}

/** Appends a convolution (implicit GEMM) to `prog`. */
export async function conv2d(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  o: Conv2dOptions,
): Promise<void> {
  const s = o.shape;
  const oh = convOut(s.h, s.kh, s.stride, s.pad);
  const ow = convOut(s.w, s.kw, s.stride, s.pad);
  const tile = o.tile ?? chooseTile(s.cout, oh * ow);
  const pipeline = await ctx.pipelines.get({
    name: "conv.wgsl",
    source,
    entry: "forward",
    constants: {
      KH: s.kh,
      KW: s.kw,
      STRIDE: s.stride,
      PAD: s.pad,
      ...tile,
      HAS_BIAS: o.bias ? 1 : 0,
      RELU: o.relu ? 1 : 0,
      ACCUMULATE: o.accumulate ? 1 : 0,
      MASK_IN: o.maskIn ? 1 : 0,
      MASK_OUT: o.maskOut ? 1 : 0,
    },
  });
  const u = ctx.uniform(scope, params(s, oh, ow, o), `${o.label}.params`);
  prog.dispatch(
    o.label,
    pipeline,
    [
      u,
      o.x.buffer,
      o.weights,
      o.bias ?? ctx.dummy,
      o.out.buffer,
      o.maskIn?.buffer ?? ctx.dummy,
      o.maskOut?.buffer ?? ctx.dummy,
    ],
    [Math.ceil(oh * ow / (tile.TN * tile.WGX)), Math.ceil(s.cout / (tile.TM * tile.WGY))],
    2 * s.cout * oh * ow * s.cin * s.kh * s.kw,
  );
}

/**
 * Appends the input gradient of a strided convolution: `dy` (gradient of the
 * post-ReLU output, masked by `y > 0`) → `dx`. `shape` is the forward shape.
 */
export async function conv2dBackwardStrided(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  o: {
    label: string;
    shape: ConvShape;
    dy: View;
    y: View;
    weights: GPUBuffer;
    dx: View;
    accumulate?: boolean;
  },
): Promise<void> {
  const s = o.shape;
  if (s.cin > 4) throw new RangeError(`${o.label}: strided backward supports ≤ 4 input channels`);
  const oh = convOut(s.h, s.kh, s.stride, s.pad);
  const ow = convOut(s.w, s.kw, s.stride, s.pad);
  const pipeline = await ctx.pipelines.get({
    name: "conv.wgsl",
    source,
    entry: "backward_input_strided",
    constants: {
      KH: s.kh,
      KW: s.kw,
      STRIDE: s.stride,
      PAD: s.pad,
      MASK_IN: 1,
      ACCUMULATE: o.accumulate ? 1 : 0,
    },
  });
  const words = new Uint32Array([
    s.cin,
    s.cout,
    s.h,
    s.w,
    oh,
    ow,
    o.dy.offset,
    o.dx.offset,
    o.y.offset,
    0,
  ]);
  const u = ctx.uniform(scope, words, `${o.label}.params`);
  prog.dispatch(
    o.label,
    pipeline,
    [u, o.dy.buffer, o.weights, null, o.dx.buffer, o.y.buffer, null],
    [Math.ceil(s.h * s.w / 64)],
    2 * s.cout * oh * ow * s.cin * s.kh * s.kw,
  );
}
