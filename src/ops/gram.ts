/**
 * Gram-matrix wrapper over src/shaders/gram.wgsl: G = F·Fᵀ/(C·H·W) with a
 * split over pixels, optionally the style loss w·Σ(G−A)² and its backward.
 * The backward dF += (4w/N)·(G−A)·F is a 1×1 convolution by dG (conv.ts).
 * @module
 */
import source from "../shaders/gram.wgsl" with { type: "text" };
import type { Program } from "../gpu/scheduler.ts";
import { conv2d } from "./conv.ts";
import type { OpContext, Scope, View } from "./context.ts";

const REGS = 4;
const WG = 8;
const SIDE = REGS * WG;

/** How the pixels are split: chunk length and number of chunks. */
export function gramSplit(c: number, npix: number): { chunk: number; splits: number } {
  const blocks = Math.ceil(c / SIDE);
  const pairs = blocks * (blocks + 1) / 2;
  // Enough workgroups to keep every core busy, chunks of at least 128 pixels.
  const wanted = Math.max(1, Math.min(64, Math.ceil(48 / pairs), Math.ceil(npix / 128)));
  const chunk = Math.ceil(npix / wanted);
  return { chunk, splits: Math.ceil(npix / chunk) };
}

/** Floats of scratch a Gram of `c` channels over `npix` pixels needs. */
export function gramScratchFloats(c: number, npix: number): number {
  return gramSplit(c, npix).splits * c * c;
}

/** Number of per-workgroup partial sums {@link gram} writes with a loss. */
export const GRAM_LOSS_PARTS = 16;

/** Options of {@link gram}. */
export interface GramOptions {
  label: string;
  c: number;
  npix: number;
  f: View;
  /** Scratch of at least {@link gramScratchFloats} floats. */
  scratch: GPUBuffer;
  /** Receives G [C][C]. */
  gram: View;
  /** With a loss: target A, weight, dG buffer [C][C], and where the partial sums go. */
  loss?: {
    target: GPUBuffer;
    weight: number;
    dgram: GPUBuffer;
    parts: View;
  };
}

/** Appends the Gram matrix (and optionally the style loss and dG) to `prog`. */
export async function gram(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  o: GramOptions,
): Promise<void> {
  const { chunk, splits } = gramSplit(o.c, o.npix);
  const blocks = Math.ceil(o.c / SIDE);
  const n = o.c * o.npix;
  const buf = new ArrayBuffer(48);
  const u32 = new Uint32Array(buf);
  const f32 = new Float32Array(buf);
  u32.set([o.c, o.npix, chunk, blocks, o.f.offset, o.gram.offset, o.loss?.parts.offset ?? 0, 0]);
  f32.set([1 / n, o.loss?.weight ?? 0, 4 * (o.loss?.weight ?? 0) / n, 0], 8);
  const u = ctx.uniform(scope, u32, `${o.label}.params`);
  const consts = { TILE_REGS: REGS, WG };
  const partial = await ctx.pipelines.get({
    name: "gram.wgsl",
    source,
    entry: "partial",
    constants: consts,
  });
  prog.dispatch(`${o.label}.partial`, partial, [u, o.f.buffer, o.scratch], [
    blocks * (blocks + 1) / 2,
    splits,
  ], o.c * (o.c + SIDE) * o.npix);
  const reduce = await ctx.pipelines.get({
    name: "gram.wgsl",
    source,
    entry: "reduce",
    constants: { ...consts, LOSS: o.loss ? 1 : 0 },
  });
  const l = o.loss;
  prog.dispatch(
    `${o.label}.reduce`,
    reduce,
    [
      u,
      null,
      o.scratch,
      // Without a loss the kernel skips these, but its layout still has them.
      l ? l.target : ctx.dummy,
      o.gram.buffer,
      l ? l.dgram : scope.floats(1, `${o.label}.unused`),
      l ? l.parts.buffer : scope.floats(1, `${o.label}.unused`),
    ],
    [l ? GRAM_LOSS_PARTS : Math.min(GRAM_LOSS_PARTS, Math.ceil(o.c * o.c / 256))],
    splits * o.c * o.c,
  );
}

/** Appends dF += dG·F (dG symmetric [C][C], already scaled by 4w/N) into `grad`. */
export async function gramBackward(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  o: { label: string; c: number; h: number; w: number; f: View; dgram: GPUBuffer; grad: View },
): Promise<void> {
  await conv2d(ctx, scope, prog, {
    label: o.label,
    shape: { cin: o.c, cout: o.c, h: o.h, w: o.w, kh: 1, kw: 1, stride: 1, pad: 0 },
    x: o.f,
    weights: o.dgram,
    out: o.grad,
    accumulate: true,
  });
}
