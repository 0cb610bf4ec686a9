/**
 * Convolution wrappers: 1×1 convolutions (src/engine/shaders/pointwise.wgsl) and
 * 3×3 ones (src/engine/shaders/conv3x3.wgsl) with bias and ReLU fused, the same
 * kernels for stride-1 input gradients (flipped, transposed kernel; the ReLU
 * mask applied beforehand) and the Gram backward, and the input gradient of a
 * strided 3×3 convolution (src/engine/shaders/conv_s2_backward.wgsl, for conv1).
 * Loss terms can ride on the launches that write gradients: a content term
 * on a 1×1 launch ({@link ContentTerm}), a Gram backward as a 1×1 launch's
 * second input (`plus1x1`), the total-variation term on the image gradient's
 * launch ({@link TvTerm}). Tile shapes are template parameters taken from the
 * context's tile table.
 * @module
 */
import common from "../shaders/conv_common.wgsl" with { type: "text" };
import pointwise from "../shaders/pointwise.wgsl" with { type: "text" };
import conv3x3 from "../shaders/conv3x3.wgsl" with { type: "text" };
import strided from "../shaders/conv_s2_backward.wgsl" with { type: "text" };
import shift4 from "../shaders/shift4.wgsl" with { type: "text" };
import texel from "../shaders/texel.wgsl" with { type: "text" };
import type { Binding, Program } from "../gpu/scheduler.ts";
import {
  checkTextureHolds,
  type FeatureTexture,
  type OpContext,
  type Scope,
  textureShift,
  UNIFORM_ARRAY_BYTES,
  uniformArray,
  type View,
} from "./context.ts";

/** Output length of a convolution or pooling along one axis (floor mode). */
export function convOut(n: number, k: number, stride: number, pad: number): number {
  return Math.floor((n + 2 * pad - k) / stride) + 1;
}

/**
 * The tile with its channel groups (TMV) halved until 4·TMV divides cout;
 * throws a RangeError when cout is not a multiple of 4.
 */
function fitChannels<T extends { TMV: number }>(tile: T, cout: number, label: string): T {
  let tmv = tile.TMV;
  while (tmv > 1 && cout % (4 * tmv)) tmv /= 2;
  if (cout % (4 * tmv)) {
    throw new RangeError(`${label}: output channels ${cout} not a multiple of 4`);
  }
  return { ...tile, TMV: tmv };
}

/** The largest u ≤ max with n % u == 0. */
function unrollFor(n: number, max: number): number {
  let u = Math.max(1, Math.min(max, n));
  while (n % u) u--;
  return u;
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
  /** Multiply the result by (maskOut > 0). */
  maskOut?: View;
  /**
   * 1×1 only: multiply the result, before it is added into `out`, by
   * per-pixel weights (pixel p of every plane by `scaleOut` at offset + p;
   * an offset multiple of 4): the backward of a weighted Gram.
   */
  scaleOut?: View;
  /**
   * A second input (same plane stride) whose 1×1 convolution by `weights`
   * [cin][cout] is summed in: for a 3×3 convolution (stride 1, padding 1,
   * input in `x`'s buffer) the input gradients of a fire module's two expand
   * layers in one launch; for a 1×1 one any second product, e.g. a Gram
   * backward beside the squeeze layer's input gradient.
   */
  plus1x1?: { x: View; weights: GPUBuffer; cin: number; tex?: FeatureTexture };
  /**
   * Picks the tile: "gradient" (3×3) is tuned for input gradients with few
   * output channels, "gram" (1×1) for the Gram backward's square products.
   */
  use?: "forward" | "gradient" | "gram";
  /**
   * 1×1 only: the content loss of the layer `maskOut` holds (F, a ReLU
   * output), fused into the epilogue: `out` = result + 2w·(F − P), then
   * masked; each invocation writes w·Σ(F − P)² over its valid pixels (the
   * first `npix` of each plane) to `parts` — {@link pointwiseInvocations}
   * of them.
   */
  content?: ContentTerm;
  /**
   * A copy of all of x's buffer in a {@link FeatureTexture}, made before
   * this launch: 1×1 launches and 3×3 ones with vec4 row loads then fetch x
   * from it (1×1: `plus1x1.tex` likewise for the second input).
   */
  xTex?: FeatureTexture;
  /** 1×1 only: a copy of all of `maskOut`'s buffer in a texture, as `xTex`. */
  maskTex?: FeatureTexture;
  /**
   * 1×1 only: compute only the first `extent` pixels (a multiple of 4) of
   * each plane (default: the whole plane stride), e.g. the rows of a layer
   * one tile of a split image owns.
   */
  extent?: number;
}

/** A content loss term fused into a 1×1 convolution (see {@link Conv2dOptions}). */
export interface ContentTerm {
  /** P, laid out as the output (plane stride included), at offset 0. */
  target: GPUBuffer;
  /** P again in a texture (as a texture copy of `target` would hold it): fetched from there. */
  targetTex?: FeatureTexture;
  weight: number;
  /** Valid pixels (H·W) of each plane. */
  npix: number;
  parts: View;
}

function flags(o: Conv2dOptions): Record<string, number> {
  return {
    HAS_BIAS: o.bias ? 1 : 0,
    RELU: o.relu ? 1 : 0,
    ACCUMULATE: o.accumulate ? 1 : 0,
    MASK_OUT: o.maskOut ? 1 : 0,
  };
}

function bindings(ctx: OpContext, u: GPUBuffer, o: Conv2dOptions): (GPUBuffer | null)[] {
  return [
    u,
    o.x.buffer,
    o.weights,
    o.bias ?? ctx.dummy,
    o.out.buffer,
    o.maskOut?.buffer ?? ctx.dummy,
  ];
}

/**
 * Appends a convolution to `prog`: 1×1 (stride 1, no padding) or 3×3 (any
 * stride and padding). Throws a RangeError for other shapes or when cout is
 * not a multiple of the tile's channel count.
 */
export async function conv2d(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  o: Conv2dOptions,
): Promise<void> {
  const s = o.shape;
  const oh = convOut(s.h, s.kh, s.stride, s.pad);
  const ow = convOut(s.w, s.kw, s.stride, s.pad);
  const flops = 2 * s.cout * oh * ow * s.cin * s.kh * s.kw;
  const [xo, oo, mo] = [o.x.offset, o.out.offset, o.maskOut?.offset ?? 0];
  const xPlane = o.x.plane ?? s.h * s.w;
  const outPlane = o.out.plane ?? oh * ow;
  if (o.maskOut && (o.maskOut.plane ?? oh * ow) !== outPlane) {
    throw new RangeError(`${o.label}: the mask's plane stride must be the output's`);
  }
  if (xPlane < s.h * s.w || outPlane < oh * ow) {
    throw new RangeError(`${o.label}: plane stride smaller than a plane`);
  }
  if (s.kh === 1 && s.kw === 1 && s.stride === 1 && s.pad === 0) {
    // The kernel moves aligned vec4s: the network's padded planes.
    if (xPlane !== outPlane || [xPlane, xo, oo, mo].some((v) => v % 4)) {
      throw new RangeError(
        `${o.label}: a 1×1 convolution needs one plane stride for input and output, ` +
          `it and every offset multiples of 4 (planeStride)`,
      );
    }
    const c = o.content;
    const p2 = o.plus1x1;
    if (p2 && ((p2.x.plane ?? s.h * s.w) !== xPlane || p2.x.offset % 4)) {
      throw new RangeError(
        `${o.label}: plus1x1 needs x's plane stride and an offset multiple of 4`,
      );
    }
    if (c && (!o.maskOut || oo !== 0)) {
      throw new RangeError(
        `${o.label}: a fused content term needs maskOut (F) and out at offset 0`,
      );
    }
    const sc = o.scaleOut;
    if (sc && sc.offset % 4) {
      throw new RangeError(`${o.label}: scaleOut's offset must be a multiple of 4`);
    }
    if (o.extent !== undefined && (o.extent % 4 || o.extent > xPlane || o.extent <= 0)) {
      throw new RangeError(`${o.label}: extent ${o.extent} is not a multiple of 4 within a plane`);
    }
    const { tile: t, grid } = pointwiseLaunch(ctx, s.cout, o.extent ?? xPlane, o.use, o.label);
    const [t0, t1, tm] = [o.xTex, p2?.tex, o.maskOut ? o.maskTex : undefined];
    const w0u = uniformChunks(o.weights, s.cin, s.cout);
    const w1u = p2 ? uniformChunks(p2.weights, p2.cin, s.cout) : null;
    // The last plane is read up to the extent.
    const tail = (o.extent ?? xPlane) - xPlane;
    checkTextureHolds(t0, xo + s.cin * xPlane + tail, o.label, "x");
    checkTextureHolds(
      t1,
      (p2?.x.offset ?? 0) + (p2?.cin ?? 0) * xPlane + tail,
      o.label,
      "plus1x1's x",
    );
    checkTextureHolds(tm, mo + s.cout * outPlane + tail, o.label, "the mask");
    checkTextureHolds(c?.targetTex, s.cout * outPlane, o.label, "P");
    const pipeline = await ctx.pipelines.get({
      name: "pointwise.wgsl",
      source: `${pointwise}\n${common}\n${texel}`,
      template: {
        ...t,
        E1: p2 ? 1 : 0,
        XT0: t0 ? 1 : 0,
        XT1: t1 ? 1 : 0,
        MT: tm ? 1 : 0,
        CT: c?.targetTex ? 1 : 0,
        WU0: w0u ? 1 : 0,
        NC0: w0u?.length ?? 1,
        WU1: w1u ? 1 : 0,
        NC1: w1u?.length ?? 1,
        SC: sc ? 1 : 0,
      },
      entry: "main",
      constants: { ...flags(o), CONTENT: c ? 1 : 0 },
    });
    const words = new Uint32Array(20);
    words.set([s.cin, s.cout / 4, xPlane, xo, oo, mo, c?.npix ?? 0, c?.parts.offset ?? 0]);
    new Float32Array(words.buffer).set([c?.weight ?? 0], 8);
    words.set([
      p2?.cin ?? 0,
      p2?.x.offset ?? 0,
      textureShift(t0),
      textureShift(t1),
      textureShift(tm),
      textureShift(c?.targetTex),
      o.extent ?? 0,
      sc?.offset ?? 0,
    ], 9);
    const u = ctx.uniform(scope, words, `${o.label}.params`);
    const b = bindings(ctx, u, o);
    // x, out and the mask through their vec4 views (bindings 6–8), P and
    // the loss partials (9, 10; the context's sink stands in, unwritten,
    // without a content term), the second input and its weights (11, 12); the
    // textures of x, the second input, the mask and P (14–17) instead of
    // their buffers.
    prog.dispatch(
      o.label,
      pipeline,
      [
        b[0],
        null,
        w0u?.[0] ?? b[2],
        b[3],
        null,
        null,
        t0 ? null : b[1],
        b[4],
        tm ? null : b[5],
        c?.targetTex ? null : c?.target ?? ctx.dummy,
        c?.parts.buffer ?? ctx.sink,
        t1 ? null : p2?.x.buffer ?? null,
        w1u?.[0] ?? p2?.weights ?? null,
        sc?.buffer ?? null,
        t0?.view ?? null,
        t1?.view ?? null,
        tm?.view ?? null,
        c?.targetTex?.view ?? null,
        // The weights' further uniform arrays (18–20, 21–23).
        ...[1, 2, 3].map((k) => w0u?.[k] ?? null),
        ...[1, 2, 3].map((k) => w1u?.[k] ?? null),
      ],
      grid,
      flops + (c ? 5 * s.cout * c.npix : 0) + (p2 ? 2 * s.cout * s.h * s.w * p2.cin : 0),
    );
    return;
  }
  if (s.kh !== 3 || s.kw !== 3) {
    throw new RangeError(`${o.label}: unsupported ${s.kh}×${s.kw} kernel`);
  }
  const base = s.stride > 1
    ? ctx.tiles.conv3x3Strided
    : o.use === "gradient"
    ? ctx.tiles.conv3x3Gradient
    : ctx.tiles.conv3x3;
  const nseg = Math.ceil(ow / base.TN);
  const t = fitChannels(base, s.cout, o.label);
  const xv = t.TN % 4 === 0 ? t.XV : 0;
  const p1 = o.plus1x1;
  if (
    p1 && (s.stride !== 1 || s.pad !== 1 || !xv || p1.x.buffer !== o.x.buffer ||
      (p1.x.plane ?? s.h * s.w) !== xPlane)
  ) {
    throw new RangeError(
      `${o.label}: plus1x1 needs stride 1, padding 1, vec4 rows and an input in x's buffer and layout`,
    );
  }
  // Flattened pixel segments and vec4 stores, for launches writing aligned
  // planes: a "same" convolution with vec4 row loads (the expand3x3 layers
  // and the fire modules' input gradients) or an unpadded one with scalar
  // loads (conv1).
  const flat = (s.stride === 1 && s.pad === 1 && xv) || (s.pad === 0 && !xv);
  const fl = flat && t.TN % 4 === 0 &&
      [oo, mo, outPlane, p1?.x.offset ?? 0, p1 ? xPlane : 0].every((v) => v % 4 === 0)
    ? 1
    : 0;
  const xTex = xv ? o.xTex : undefined;
  const xt = xTex ? 1 : 0;
  // The weights of each kernel row (ky) through a uniform array, where the
  // buffer allows: lavapipe gathers uniform loads instead of looping over
  // the lanes as it does for storage.
  const rowBytes = 3 * s.cin * s.cout * 4;
  const wk = [0, 1, 2].map((ky) => uniformArray(o.weights, rowBytes, ky * rowBytes));
  const wu = wk.every((b) => b) ? 1 : 0;
  const wone = p1 ? uniformArray(p1.weights, p1.cin * s.cout * 4) : null;
  const xEnd = Math.max(xo + s.cin * xPlane, (p1?.x.offset ?? 0) + (p1?.cin ?? 0) * xPlane);
  checkTextureHolds(xTex, xEnd, o.label, "x");
  const pipeline = await ctx.pipelines.get({
    name: "conv3x3.wgsl",
    source: `${conv3x3}\n${common}\n${shift4}\n${texel}`,
    template: {
      ...t,
      S: s.stride,
      PAD: s.pad,
      XV: xv,
      // Unroll the input channels by the largest of 1..t.U dividing cin.
      U: unrollFor(s.cin, t.U),
      E1: p1 ? 1 : 0,
      FL: fl,
      XT: xt,
      WU: wu,
      WU1: wone ? 1 : 0,
    },
    entry: "main",
    constants: flags(o),
  });
  const words = new Uint32Array([
    s.cin,
    s.cout / 4,
    s.h,
    s.w,
    oh,
    ow,
    nseg,
    xo,
    oo,
    mo,
    xPlane,
    outPlane,
    p1?.cin ?? 0,
    p1?.x.offset ?? 0,
    textureShift(xTex),
    0,
  ]);
  const u = ctx.uniform(scope, words, `${o.label}.params`);
  // With XV the kernel reads x only through its vec4 view (binding 6), with
  // XT through the texture (binding 10).
  const b: Binding[] = bindings(ctx, u, o);
  if (xv) b[1] = null;
  if (wu) b[2] = wk[0];
  // With FL it writes out and reads the mask only through vec4 views
  // (bindings 8 and 9).
  if (fl) b[4] = b[5] = null;
  const segments = fl ? Math.ceil(oh * ow / t.TN) : oh * nseg;
  prog.dispatch(
    o.label,
    pipeline,
    [
      ...b,
      xv && !xt ? o.x.buffer : null,
      wone ?? p1?.weights ?? null,
      fl ? o.out.buffer : null,
      fl ? o.maskOut?.buffer ?? ctx.dummy : null,
      xTex?.view ?? null,
      wu ? wk[1] : null,
      wu ? wk[2] : null,
    ],
    [s.cout / (4 * t.TMV), Math.ceil(segments / t.WG)],
    flops + (p1 ? 2 * s.cout * oh * ow * p1.cin : 0),
  );
}

/**
 * A 1×1 kernel's weights [cin][cout] as up to 4 uniform arrays of
 * UNIFORM_ARRAY_BYTES, each holding whole rows (pointwise.wgsl WU, NC), or
 * null where they do not fit them ({@link uniformArray}).
 */
function uniformChunks(
  weights: GPUBuffer,
  cin: number,
  cout: number,
): { buffer: GPUBuffer; offset: number; size: number }[] | null {
  const bytes = cin * cout * 4;
  const n = Math.ceil(bytes / UNIFORM_ARRAY_BYTES);
  // Rows per array: a whole array's worth, so every array starts aligned.
  if (n > 4 || (n > 1 && UNIFORM_ARRAY_BYTES % (cout * 4))) return null;
  const chunks = [];
  for (let k = 0; k < n; k++) {
    const at = k * UNIFORM_ARRAY_BYTES;
    const c = uniformArray(weights, Math.min(bytes - at, UNIFORM_ARRAY_BYTES), at);
    if (!c) return null;
    chunks.push(c);
  }
  return chunks;
}

/**
 * The tile and grid of a 1×1 convolution launch with `cout` output channels
 * on planes of `plane` elements.
 */
function pointwiseLaunch(
  ctx: OpContext,
  cout: number,
  plane: number,
  use: Conv2dOptions["use"],
  label: string,
): { tile: { TMV: number; TN: number; WG: number }; grid: [number, number] } {
  const t = fitChannels(use === "gram" ? ctx.tiles.gramBackward : ctx.tiles.pointwise, cout, label);
  return { tile: t, grid: [cout / (4 * t.TMV), Math.ceil(plane / 4 / (t.WG * t.TN))] };
}

/**
 * The invocations of a 1×1 convolution launch (forward or input-gradient
 * tile) with `cout` output channels on planes of `plane` elements: the loss
 * partials a fused content term writes.
 */
export function pointwiseInvocations(ctx: OpContext, cout: number, plane: number): number {
  const { tile, grid } = pointwiseLaunch(ctx, cout, plane, "forward", "content");
  return grid[0] * grid[1] * tile.WG;
}

/**
 * Repacks a [3][3][Cin≤4][Cout] kernel for {@link conv2dBackwardStrided}:
 * wb[co][ky·3+kx] = vec4(W[ky][kx][0..Cin−1][co], 0…).
 */
export function packStridedKernel(
  kernel: Float32Array,
  cin: number,
  cout: number,
): Float32Array<ArrayBuffer> {
  if (cin > 4) throw new RangeError(`strided backward supports ≤ 4 input channels, got ${cin}`);
  const out = new Float32Array(cout * 9 * 4);
  for (let co = 0; co < cout; co++) {
    for (let k = 0; k < 9; k++) {
      for (let ci = 0; ci < cin; ci++) {
        out[(co * 9 + k) * 4 + ci] = kernel[(k * cin + ci) * cout + co];
      }
    }
  }
  return out;
}

/** A total-variation loss term fused into {@link conv2dBackwardStrided}. */
export interface TvTerm {
  /** The image x [cin][h][w], dense, at the buffer's start. */
  x: GPUBuffer;
  weight: number;
  /** Where the loss partials go: {@link stridedBackwardInvocations} of them. */
  parts: View;
}

/**
 * Appends the input gradient of a 3×3 stride-2 unpadded convolution with ≤ 4
 * input channels: `dy` (gradient of the convolution's output) → `dx`
 * (overwritten). `packed` comes from {@link packStridedKernel}. With `tv`
 * (dx dense at offset 0: the image's gradient), the total-variation loss of
 * the image is fused in: dx gets its gradient added and each invocation
 * writes its loss partial.
 */
export async function conv2dBackwardStrided(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  o: {
    label: string;
    shape: ConvShape;
    dy: View;
    packed: GPUBuffer;
    dx: View;
    tv?: TvTerm;
    /** A copy of all of dy's buffer in a texture, made before: dy is fetched from it. */
    dyTex?: FeatureTexture;
  },
): Promise<void> {
  const s = o.shape;
  if (s.kh !== 3 || s.kw !== 3 || s.stride !== 2 || s.pad !== 0 || s.cin > 4) {
    throw new RangeError(`${o.label}: only 3×3 stride-2 unpadded kernels with ≤ 4 inputs`);
  }
  const oh = convOut(s.h, 3, 2, 0);
  const ow = convOut(s.w, 3, 2, 0);
  const t = ctx.tiles.stridedBackward;
  if (t.Q % 4) throw new RangeError(`${o.label}: the tile's Q must be a multiple of 4`);
  const tv = o.tv;
  if (tv && (o.dx.offset !== 0 || (o.dx.plane ?? s.h * s.w) !== s.h * s.w)) {
    throw new RangeError(`${o.label}: a fused TV term needs a dense dx at offset 0`);
  }
  const wu = uniformArray(o.packed, s.cout * 9 * 16);
  const pipeline = await ctx.pipelines.get({
    name: "conv_s2_backward.wgsl",
    source: `${strided}\n${shift4}\n${texel}`,
    template: { ...t, TV: tv ? 1 : 0, DT: o.dyTex ? 1 : 0, WU: wu ? 1 : 0 },
    entry: "main",
  });
  const dyPlane = o.dy.plane ?? oh * ow;
  checkTextureHolds(o.dyTex, o.dy.offset + s.cout * dyPlane, o.label, "dy");
  const { nseg, groups } = stridedGrid(t, s.h, s.w);
  const words = new Uint32Array(16);
  words.set([
    s.cout,
    s.cin,
    s.h,
    s.w,
    oh,
    ow,
    nseg,
    o.dy.offset,
    o.dx.offset,
    dyPlane,
    o.dx.plane ?? s.h * s.w,
    tv?.parts.offset ?? 0,
    0,
    textureShift(o.dyTex),
  ]);
  new Float32Array(words.buffer).set([tv?.weight ?? 0], 12);
  const u = ctx.uniform(scope, words, `${o.label}.params`);
  prog.dispatch(
    o.label,
    pipeline,
    [
      u,
      o.dyTex ? null : o.dy.buffer,
      wu ?? o.packed,
      o.dx.buffer,
      tv?.x ?? null,
      tv?.parts.buffer ?? null,
      o.dyTex?.view ?? null,
    ],
    [groups],
    2 * s.cout * oh * ow * s.cin * 9 + (tv ? 10 * s.cin * s.h * s.w : 0),
  );
}

/** Row segments and workgroups of a strided-backward launch for an h×w input. */
function stridedGrid(t: { Q: number; WG: number }, h: number, w: number) {
  const nseg = Math.ceil(Math.ceil(w / 2) / t.Q);
  return { nseg, groups: Math.ceil(Math.ceil(h / 2) * nseg / t.WG) };
}

/**
 * The invocations of {@link conv2dBackwardStrided} for an h×w input: the
 * loss partials a fused TV term writes.
 */
export function stridedBackwardInvocations(ctx: OpContext, h: number, w: number): number {
  const t = ctx.tiles.stridedBackward;
  return stridedGrid(t, h, w).groups * t.WG;
}
