/**
 * SqueezeNet 1.1 feature network on the GPU: the layer table (it reads like
 * the diagram), its weights as device buffers, and builders that record a
 * forward pass (as far as the deepest tap asked for) and the matching
 * backward pass into a {@link Program}.
 * @module
 */
import type { Program } from "../gpu/scheduler.ts";
import {
  type ContentTerm,
  conv2d,
  conv2dBackwardStrided,
  convOut,
  packStridedKernel,
  type TvTerm,
} from "../ops/conv.ts";
import {
  type FeatureTexture,
  type OpContext,
  planeStride,
  type Scope,
  type View,
  view,
} from "../ops/context.ts";
import {
  avgPool,
  avgPoolBackward,
  maxPool,
  maxPoolBackward,
  type Pooling,
  poolOut,
} from "../ops/pool.ts";
import { reluBackward } from "../ops/relu.ts";
import type { ConvWeights } from "./weights.ts";

/** The activations a loss can use, in network order. */
export type TapName =
  | "conv1"
  | "fire2"
  | "fire3"
  | "fire4"
  | "fire5"
  | "fire6"
  | "fire7"
  | "fire8"
  | "fire9";

/** Every tap name, in network order. */
export const TAP_NAMES: readonly TapName[] = [
  "conv1",
  "fire2",
  "fire3",
  "fire4",
  "fire5",
  "fire6",
  "fire7",
  "fire8",
  "fire9",
];

/** One layer of the feature network. */
export type Layer =
  | { kind: "conv"; name: TapName; out: number; k: number; stride: number }
  | { kind: "pool"; name: string }
  | { kind: "fire"; name: TapName; squeeze: number; expand: number };

const conv1 = (): Layer => ({ kind: "conv", name: "conv1", out: 64, k: 3, stride: 2 });
const pool = (name: string): Layer => ({ kind: "pool", name });
const fire = (name: TapName, squeeze: number, expand: number): Layer => ({
  kind: "fire",
  name,
  squeeze,
  expand,
});

/** SqueezeNet 1.1 `features`: conv1 → pool → fire2, fire3 → pool → fire4, fire5 → pool → fire6…9. */
export const SQUEEZENET: readonly Layer[] = [
  conv1(),
  pool("pool1"),
  fire("fire2", 16, 64),
  fire("fire3", 16, 64),
  pool("pool3"),
  fire("fire4", 32, 128),
  fire("fire5", 32, 128),
  pool("pool5"),
  fire("fire6", 48, 192),
  fire("fire7", 48, 192),
  fire("fire8", 64, 256),
  fire("fire9", 64, 256),
];

/** Channels and size of an activation. */
export interface Dims {
  c: number;
  h: number;
  w: number;
}

/** The output dims of every layer for an input of h×w; stops where a layer has no output. */
export function layerDims(h: number, w: number): Dims[] {
  const dims: Dims[] = [];
  let d: Dims = { c: 3, h, w };
  for (const l of SQUEEZENET) {
    if (l.kind === "conv") {
      if (d.h < l.k || d.w < l.k) break;
      d = { c: l.out, h: convOut(d.h, l.k, l.stride, 0), w: convOut(d.w, l.k, l.stride, 0) };
    } else if (l.kind === "pool") {
      if (d.h < 3 || d.w < 3) break;
      d = { c: d.c, h: poolOut(d.h), w: poolOut(d.w) };
    } else d = { c: 2 * l.expand, h: d.h, w: d.w };
    dims.push(d);
  }
  return dims;
}

/** Index in {@link SQUEEZENET} of a tap's layer. */
export function tapLayerIndex(tap: TapName): number {
  return SQUEEZENET.findIndex((l) => l.kind !== "pool" && l.name === tap);
}

interface ConvParams {
  /** [KH][KW][Cin][Cout] */
  w: GPUBuffer;
  b: GPUBuffer;
  /** Flipped, transposed kernel [KH][KW][Cout][Cin]: the input gradient of stride-1 layers. */
  back: GPUBuffer;
  /** Layers with ≤ 4 inputs (conv1): the kernel packed for the strided input gradient. */
  packed: GPUBuffer | null;
  shape: [number, number, number, number];
}

/** Flips a [KH][KW][Cin][Cout] kernel spatially and swaps Cin/Cout: the backward kernel. */
export function backwardKernel(k: ConvWeights): Float32Array<ArrayBuffer> {
  const out = new Float32Array(k.kernel.length);
  for (let kh = 0; kh < k.kh; kh++) {
    for (let kw = 0; kw < k.kw; kw++) {
      for (let ci = 0; ci < k.cin; ci++) {
        for (let co = 0; co < k.cout; co++) {
          const src = ((kh * k.kw + kw) * k.cin + ci) * k.cout + co;
          const dst = (((k.kh - 1 - kh) * k.kw + (k.kw - 1 - kw)) * k.cout + co) * k.cin + ci;
          out[dst] = k.kernel[src];
        }
      }
    }
  }
  return out;
}

/** The network's weights uploaded to the GPU (forward and backward layouts). */
export class NetWeights {
  #layers = new Map<string, ConvParams>();

  private constructor() {}

  /** Uploads every layer of `weights` into buffers held by `scope`. */
  static upload(ctx: OpContext, scope: Scope, weights: Map<string, ConvWeights>): NetWeights {
    const net = new NetWeights();
    for (const [name, k] of weights) {
      net.#layers.set(name, {
        w: ctx.upload(scope, new Float32Array(k.kernel), `${name}.w`),
        b: ctx.upload(scope, new Float32Array(k.bias), `${name}.b`, false),
        back: ctx.upload(scope, backwardKernel(k), `${name}.wback`),
        packed: k.cin <= 4 && k.kh === 3 && k.kw === 3
          ? ctx.upload(scope, packStridedKernel(k.kernel, k.cin, k.cout), `${name}.wpacked`)
          : null,
        shape: [k.kh, k.kw, k.cin, k.cout],
      });
    }
    return net;
  }

  /** The buffers of layer `name` (e.g. "fire3/expand3x3"). */
  get(name: string): ConvParams {
    const p = this.#layers.get(name);
    if (!p) throw new Error(`no weights for layer ${name}`);
    return p;
  }
}

/** The recorded forward pass: where every layer's output lives. */
export interface Forward {
  /** Input image buffer [3][H][W]. */
  input: GPUBuffer;
  /**
   * Per layer (up to the deepest recorded): its output buffer, dims and plane
   * stride ({@link planeStride}: the buffer holds c·plane floats).
   */
  outputs: { buffer: GPUBuffer; dims: Dims; plane: number }[];
  /** Fire layers: their squeeze activation; max pools: their argmax (none for "avg"). */
  squeeze: (GPUBuffer | null)[];
  argmax: (GPUBuffer | null)[];
  /** The pool layers' pooling. */
  pooling: Pooling;
  /**
   * The outputs copied into a feature texture after their launches (the
   * layers asked for, where the device's textures are large enough), else
   * null.
   */
  textures: (FeatureTexture | null)[];
  /** Input dims. */
  dims: Dims;
}

/** Options of {@link recordForward}. */
export interface ForwardOptions {
  /** Layers whose outputs are copied into feature textures. */
  textured?: ReadonlySet<number>;
  /** Every activation a transient of the scope (plans that never read them back). */
  transient?: boolean;
  /** How the pool layers pool (default "max"). */
  pooling?: Pooling;
}

/**
 * Records the forward pass of an h×w image up to layer index `upto`
 * (inclusive) into `prog`. The input buffer is `input` (written by the
 * caller). The outputs of the layers in `opts.textured` are then copied into
 * feature textures, and every fire module's squeeze activations too: the
 * launches that read them from scattered places (the Gram matrices, the
 * content term, pooling, expand3x3) fetch them faster there, and so do the
 * 1×1 convolutions whose input has a copy (a fire module's expand1x1; its
 * squeeze1x1 after a textured layer), now that their weights are cheap to
 * load (bench/NOTES.md, row 60). The pool layers pool by `pooling`. With
 * `transient`, every activation (and its texture copies and argmax) is a
 * transient of the scope ({@link Scope.temp}): for plans that never read
 * them back.
 */
export async function recordForward(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  net: NetWeights,
  input: GPUBuffer,
  h: number,
  w: number,
  upto: number,
  opts: ForwardOptions = {},
): Promise<Forward> {
  const { textured = new Set(), transient = false, pooling = "max" } = opts;
  const dims = layerDims(h, w);
  const floats = (n: number, label: string) =>
    transient ? scope.temp(n, label) : scope.floats(n, label);
  const texture = (n: number, label: string) =>
    transient
      ? scope.tempTexture(ctx.device, n, label)
      : scope.featureTexture(ctx.device, n, label);
  const fwd: Forward = {
    input,
    outputs: [],
    squeeze: [],
    argmax: [],
    textures: [],
    pooling,
    dims: { c: 3, h, w },
  };
  // The image is dense; every activation after it has padded planes.
  let x = view(input);
  let d: Dims = fwd.dims;
  for (let i = 0; i <= upto; i++) {
    const l = SQUEEZENET[i];
    const o = dims[i];
    const plane = planeStride(o.h, o.w);
    const tex = textured.has(i) ? texture(o.c * plane, `${l.name}.tex`) : null;
    // The copy into the texture reads whole texture rows.
    const out = floats(Math.max(o.c * plane, tex?.floats ?? 0), `${l.name}.out`);
    let sq: GPUBuffer | null = null;
    let arg: GPUBuffer | null = null;
    if (l.kind === "conv") {
      const p = net.get(l.name);
      await conv2d(ctx, scope, prog, {
        label: l.name,
        shape: { cin: d.c, cout: o.c, h: d.h, w: d.w, kh: l.k, kw: l.k, stride: l.stride, pad: 0 },
        x,
        weights: p.w,
        bias: p.b,
        out: view(out, 0, plane),
        relu: true,
      });
    } else if (l.kind === "pool") {
      const args = {
        label: l.name,
        shape: d,
        x,
        out: view(out, 0, plane),
        // The input layer's texture copy, when it has one (a style layer).
        xTex: fwd.textures[i - 1] ?? undefined,
      };
      if (pooling === "avg") await avgPool(ctx, scope, prog, args);
      else {
        arg = transient
          ? scope.tempAcquire(o.c * plane * 4, GPUBufferUsage.STORAGE, `${l.name}.argmax`)
          : scope.acquire(o.c * plane * 4, GPUBufferUsage.STORAGE, `${l.name}.argmax`);
        await maxPool(ctx, scope, prog, { ...args, argmax: arg });
      }
    } else {
      const sqTex = texture(l.squeeze * plane, `${l.name}.squeeze.tex`);
      sq = floats(Math.max(l.squeeze * plane, sqTex?.floats ?? 0), `${l.name}.squeeze`);
      const s = net.get(`${l.name}/squeeze1x1`);
      const e1 = net.get(`${l.name}/expand1x1`);
      const e3 = net.get(`${l.name}/expand3x3`);
      const at = { h: d.h, w: d.w, stride: 1 };
      await conv2d(ctx, scope, prog, {
        label: `${l.name}.squeeze1x1`,
        shape: { ...at, cin: d.c, cout: l.squeeze, kh: 1, kw: 1, pad: 0 },
        x,
        weights: s.w,
        bias: s.b,
        out: view(sq, 0, plane),
        relu: true,
        // The input layer's texture copy, when it has one (a style or
        // content layer).
        xTex: fwd.textures[i - 1] ?? undefined,
      });
      if (sqTex) prog.copyToTexture(`${l.name}.squeeze.tex`, sq, sqTex.texture);
      await conv2d(ctx, scope, prog, {
        label: `${l.name}.expand1x1`,
        shape: { ...at, cin: l.squeeze, cout: l.expand, kh: 1, kw: 1, pad: 0 },
        x: view(sq, 0, plane),
        weights: e1.w,
        bias: e1.b,
        out: view(out, 0, plane),
        relu: true,
        xTex: sqTex ?? undefined,
      });
      await conv2d(ctx, scope, prog, {
        label: `${l.name}.expand3x3`,
        shape: { ...at, cin: l.squeeze, cout: l.expand, kh: 3, kw: 3, pad: 1 },
        x: view(sq, 0, plane),
        weights: e3.w,
        bias: e3.b,
        out: view(out, l.expand * plane, plane),
        relu: true,
        xTex: sqTex ?? undefined,
      });
    }
    if (tex) prog.copyToTexture(`${l.name}.tex`, out, tex.texture);
    fwd.textures.push(tex);
    fwd.outputs.push({ buffer: out, dims: o, plane });
    fwd.squeeze.push(sq);
    fwd.argmax.push(arg);
    x = view(out, 0, plane);
    d = o;
  }
  return fwd;
}

/** How the losses take part in {@link recordBackward}. */
export interface BackwardLosses {
  /** Whether any loss adds a gradient at layer `layer`'s output. */
  hasLoss(layer: number): boolean;
  /**
   * Whether {@link inject} can write the deepest layer's gradient without its
   * being cleared first (its first write overwrites instead of adding).
   */
  overwrites(layer: number): boolean;
  /**
   * Records the loss gradients that add into `grad` (d loss / d output of
   * `layer`); with `fresh`, `grad` holds nothing yet and the first write
   * overwrites it (only where {@link overwrites} said so). With `relu`, the
   * layer's ReLU output, it may fuse the ReLU backward into its last write;
   * it returns whether it did.
   */
  inject(layer: number, grad: GPUBuffer, relu: View | null, fresh: boolean): Promise<boolean>;
  /**
   * Asked when a 1×1 convolution writes `layer`'s gradient last: a loss
   * term's gradient to fuse into that write (which then also applies the
   * layer's ReLU backward) — a content term, or a Gram backward dG·F summed
   * in — or null. A term given here is left out of {@link inject}.
   */
  fusePointwise?(layer: number): Promise<PointwiseFusion | null>;
  /**
   * Asked when the first layer's strided convolution writes the image's
   * gradient: the total-variation term to fuse into that write, or null.
   */
  fuseImage?(): TvTerm | null;
}

/** A loss term's gradient fused into the 1×1 launch writing a layer's gradient. */
export type PointwiseFusion = { content: ContentTerm } | { style: FusedStyle };

/** A Gram backward dF += dG·F fused into another 1×1 launch (see {@link BackwardLosses}). */
export interface FusedStyle {
  /** F, the layer's output. */
  f: View;
  /** dG [C][C], already scaled. */
  dgram: GPUBuffer;
  /** C. */
  c: number;
  /** A texture copy of F's buffer, if it has one (F and the mask are fetched from it). */
  tex?: FeatureTexture;
}

/**
 * Records the backward pass from the deepest recorded layer down to the image
 * (through the pool layers by the forward's pooling).
 * `grads[i]` receives d loss / d output of layer i; `losses.inject(i, …)`
 * records the loss gradients that add into `grads[i]` (called after the layer
 * above has written it; the deepest layer's is cleared first unless its
 * first loss write overwrites it). The
 * image gradient is written (not added) to `imageGrad`. The gradients of the
 * layers (and their texture copies) are transients of the scope
 * ({@link Scope.temp}); the returned buffers are only for the losses' use
 * while recording.
 */
export async function recordBackward(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  net: NetWeights,
  fwd: Forward,
  imageGrad: GPUBuffer,
  losses: BackwardLosses,
): Promise<GPUBuffer[]> {
  const n = fwd.outputs.length;
  // A fire module's (or conv1's) output gradient is copied into a texture
  // for the launch that reads it, which fetches it faster from there (the
  // copy reads whole texture rows, so the buffer covers them).
  const gradTex = fwd.outputs.map((o, i) =>
    SQUEEZENET[i].kind !== "pool"
      ? scope.tempTexture(ctx.device, o.dims.c * o.plane, `${SQUEEZENET[i].name}.grad.tex`)
      : null
  );
  const grads = fwd.outputs.map((o, i) =>
    scope.temp(
      Math.max(o.dims.c * o.plane, gradTex[i]?.floats ?? 0),
      `${SQUEEZENET[i].name}.grad`,
    )
  );
  // masked[i]: the ReLU backward of layer i was fused into the last write of grads[i].
  const masked = grads.map(() => false);
  // The deepest gradient: written by its first loss term, or cleared for them.
  const fresh = losses.overwrites(n - 1);
  if (!fresh) prog.clear(`${SQUEEZENET[n - 1].name}.grad.clear`, grads[n - 1]);
  for (let i = n - 1; i >= 0; i--) {
    const l = SQUEEZENET[i];
    const d = i > 0 ? fwd.outputs[i - 1].dims : fwd.dims;
    const out = fwd.outputs[i];
    const plane = out.plane;
    // The image gradient is dense like the image.
    const dx = i > 0 ? view(grads[i - 1], 0, fwd.outputs[i - 1].plane) : view(imageGrad);
    const dy = view(grads[i], 0, plane);
    const relu = l.kind !== "pool" && !masked[i] ? view(out.buffer, 0, plane) : null;
    if (await losses.inject(i, grads[i], relu, fresh && i === n - 1)) masked[i] = true;
    if (l.kind !== "pool" && !masked[i]) {
      // Through the layer's ReLU(s), once every contribution to grads[i] is in.
      await reluBackward(ctx, scope, prog, {
        label: `${l.name}.relu.back`,
        n: out.dims.c * plane,
        grad: view(grads[i]),
        y: view(out.buffer),
      });
    }
    if (l.kind === "conv") {
      const tex = gradTex[i];
      if (tex) prog.copyToTexture(`${l.name}.grad.tex`, grads[i], tex.texture);
      await conv2dBackwardStrided(ctx, scope, prog, {
        label: `${l.name}.back`,
        shape: {
          cin: d.c,
          cout: out.dims.c,
          h: d.h,
          w: d.w,
          kh: l.k,
          kw: l.k,
          stride: l.stride,
          pad: 0,
        },
        dy,
        packed: net.get(l.name).packed!,
        dx,
        // Writing the image's gradient: the TV term may go into this write.
        tv: (i === 0 ? losses.fuseImage?.() : null) ?? undefined,
        dyTex: tex ?? undefined,
      });
    } else if (l.kind === "pool") {
      const args = { label: `${l.name}.back`, shape: d, dy, dx };
      if (fwd.pooling === "avg") await avgPoolBackward(ctx, scope, prog, args);
      else await maxPoolBackward(ctx, scope, prog, { ...args, argmax: fwd.argmax[i]! });
    } else {
      const sq = view(fwd.squeeze[i]!, 0, plane);
      const gs = view(scope.temp(l.squeeze * plane, `${l.name}.squeeze.grad`), 0, plane);
      const at = { h: d.h, w: d.w, stride: 1 };
      const e1 = net.get(`${l.name}/expand1x1`);
      const e3 = net.get(`${l.name}/expand3x3`);
      const s = net.get(`${l.name}/squeeze1x1`);
      // Both expand layers' input gradients in one launch, through the
      // squeeze layer's ReLU.
      const tex = gradTex[i];
      if (tex) prog.copyToTexture(`${l.name}.grad.tex`, grads[i], tex.texture);
      await conv2d(ctx, scope, prog, {
        label: `${l.name}.expand.back`,
        shape: { ...at, cin: l.expand, cout: l.squeeze, kh: 3, kw: 3, pad: 1 },
        x: view(grads[i], l.expand * plane, plane),
        weights: e3.back,
        plus1x1: { x: dy, weights: e1.back, cin: l.expand },
        out: gs,
        maskOut: sq,
        use: "gradient",
        xTex: tex ?? undefined,
      });
      // When nothing else adds into the input's gradient (or only a content
      // term, fused into this write), the input layer's ReLU backward is
      // fused into this write.
      const conv = i > 0 && SQUEEZENET[i - 1].kind !== "pool";
      const fusion = conv ? await losses.fusePointwise?.(i - 1) ?? null : null;
      const content = fusion && "content" in fusion ? fusion.content : null;
      const style = fusion && "style" in fusion ? fusion.style : null;
      const below = conv && (content !== null || style !== null || !losses.hasLoss(i - 1));
      await conv2d(ctx, scope, prog, {
        label: `${l.name}.squeeze1x1.back${style ? "+gram.back" : ""}`,
        shape: { ...at, cin: l.squeeze, cout: d.c, kh: 1, kw: 1, pad: 0 },
        x: gs,
        weights: s.back,
        out: dx,
        maskOut: below ? view(fwd.outputs[i - 1].buffer, 0, plane) : undefined,
        // The input layer's texture copy, when it has one, for its mask.
        maskTex: fwd.textures[i - 1] ?? undefined,
        content: content ?? undefined,
        plus1x1: style
          ? { x: style.f, weights: style.dgram, cin: style.c, tex: style.tex }
          : undefined,
        use: style ? "gram" : undefined,
      });
      if (below) masked[i - 1] = true;
    }
  }
  return grads;
}
