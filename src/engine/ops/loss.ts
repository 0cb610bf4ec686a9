/**
 * The content-loss wrapper over src/engine/shaders/loss.wgsl: the content loss with
 * its gradient (accumulated into the gradient buffer) where it has a launch
 * of its own. Every loss term leaves partial sums, which the CPU adds up when
 * it reads them (`lossTerms`, src/engine/model/stylizer.ts). (The content loss goes, where it can, into
 * the 1×1 launch writing its layer's gradient and the total-variation loss
 * into the image gradient's launch: conv.ts.)
 * @module
 */
import lossSource from "../shaders/loss.wgsl" with { type: "text" };
import workgroupSum from "../shaders/workgroup_sum.wgsl" with { type: "text" };
import type { Program } from "../gpu/scheduler.ts";
import type { OpContext, Scope, View } from "./context.ts";

const source = `${lossSource}\n${workgroupSum}`;

/** Partial sums a content launch writes (its workgroups). */
export const LOSS_PARTS = 32;

function params(
  o: {
    n: number;
    aOff: number;
    gOff: number;
    partOff: number;
    c?: number;
    h?: number;
    w?: number;
    plane?: number;
    rect?: [number, number, number, number];
  },
  weight: number,
): Uint32Array<ArrayBuffer> {
  const buf = new ArrayBuffer(64);
  new Uint32Array(buf).set([
    o.n,
    o.aOff,
    o.gOff,
    o.partOff,
    o.c ?? 0,
    o.h ?? 0,
    o.w ?? 0,
    o.plane ?? 0,
  ]);
  new Float32Array(buf).set([weight], 8);
  new Uint32Array(buf).set(o.rect ?? [0, 0, 0, 0], 12);
  return new Uint32Array(buf);
}

/**
 * Appends the content loss w·Σ(F−P)² (partials) and grad += 2w·(F−P) for
 * F [c][h][w]. With `reluMask`, F being a ReLU output, the sum is then
 * multiplied by (F > 0): the ReLU backward fused into the last write of the
 * gradient. F, P and the gradient share F's plane stride (dense when
 * absent); it and the views' offsets must be multiples of 4 (the kernel
 * moves vec4s). F may start at an offset into its planes (the rows one tile
 * of a split image owns: each plane's h·w pixels from there); then
 * `lastPlaneShort` (a multiple of 4) says how much shorter than a plane
 * stride the last plane is in F's and the gradient's buffers (the offset,
 * when F ends where its buffer does); P starts at 0.
 */
export async function contentLoss(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  o: {
    label: string;
    c: number;
    h: number;
    w: number;
    f: View;
    /** P, laid out as F (plane stride included). */
    target: GPUBuffer;
    weight: number;
    grad: View;
    parts: View;
    reluMask?: boolean;
    lastPlaneShort?: number;
  },
): Promise<void> {
  const plane = o.f.plane ?? o.h * o.w;
  if ((o.grad.plane ?? o.h * o.w) !== plane) {
    throw new RangeError(`${o.label}: F and its gradient need the same plane stride`);
  }
  if (plane % 4 || o.f.offset % 4 || o.grad.offset % 4) {
    throw new RangeError(
      `${o.label}: the plane stride and the offsets must be multiples of 4 (vec4 access)`,
    );
  }
  const n = o.c * plane - (o.lastPlaneShort ?? 0);
  const pipeline = await ctx.pipelines.get({
    name: "loss.wgsl",
    source,
    entry: "content",
    constants: { MASK: o.reluMask ? 1 : 0 },
  });
  const u = ctx.uniform(
    scope,
    params({
      n,
      aOff: o.f.offset,
      gOff: o.grad.offset,
      partOff: o.parts.offset,
      h: o.h,
      w: o.w,
      plane,
    }, o.weight),
    `${o.label}.params`,
  );
  const b = o.parts.buffer;
  prog.dispatch(o.label, pipeline, [u, null, null, null, b, o.f.buffer, o.target, o.grad.buffer], [
    LOSS_PARTS,
  ], 5 * o.c * o.h * o.w);
}

/**
 * Appends the total-variation loss of the pairs of neighbouring pixels of a
 * tile x [c][h][w] (dense) whose first pixel lies in `rect` (rows y0..y1,
 * columns x0..x1, half-open): w·Σ(x[y+1]−x[y])² + w·Σ(x[x+1]−x[x])² over
 * them ({@link LOSS_PARTS} partial sums into `parts`), and its gradient added
 * into `grad` (dense, as x). The tiles of a split image own disjoint
 * rectangles that cover it, so their terms add up to the image's.
 */
export async function tvLoss(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  o: {
    label: string;
    c: number;
    h: number;
    w: number;
    x: View;
    grad: View;
    rect: { y0: number; y1: number; x0: number; x1: number };
    weight: number;
    parts: View;
  },
): Promise<void> {
  const pipeline = await ctx.pipelines.get({ name: "loss.wgsl", source, entry: "tv" });
  const u = ctx.uniform(
    scope,
    params({
      n: o.c * o.h * o.w,
      aOff: o.x.offset,
      gOff: o.grad.offset,
      partOff: o.parts.offset,
      c: o.c,
      h: o.h,
      w: o.w,
      rect: [o.rect.y0, o.rect.y1, o.rect.x0, o.rect.x1],
    }, o.weight),
    `${o.label}.params`,
  );
  prog.dispatch(o.label, pipeline, [u, o.x.buffer, o.grad.buffer, null, o.parts.buffer], [
    LOSS_PARTS,
  ], 10 * o.c * o.h * o.w);
}
