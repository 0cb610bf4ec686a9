/**
 * Max-pooling wrapper over src/shaders/pool.wgsl: 3×3 stride 2, ceil mode,
 * forward (with argmax) and backward.
 * @module
 */
import source from "../shaders/pool.wgsl" with { type: "text" };
import type { Program } from "../gpu/scheduler.ts";
import type { OpContext, Scope, View } from "./context.ts";

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

function words(
  s: PoolShape,
  inOff: number,
  outOff: number,
  nseg: number,
): Uint32Array<ArrayBuffer> {
  return new Uint32Array([s.c, s.h, s.w, poolOut(s.h), poolOut(s.w), inOff, outOff, nseg]);
}

/** Appends max pooling `x` → `out`, recording the argmax into `argmax` (u32 per output). */
export async function maxPool(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  o: { label: string; shape: PoolShape; x: View; out: View; argmax: GPUBuffer },
): Promise<void> {
  const [oh, ow] = [poolOut(o.shape.h), poolOut(o.shape.w)];
  const nseg = Math.ceil(ow / Q);
  const pipeline = await ctx.pipelines.get({
    name: "pool.wgsl",
    source,
    template: { Q },
    entry: "forward",
  });
  const u = ctx.uniform(scope, words(o.shape, o.x.offset, o.out.offset, nseg), `${o.label}.params`);
  prog.dispatch(o.label, pipeline, [u, o.x.buffer, o.out.buffer, o.argmax], [
    Math.ceil(o.shape.c * oh * nseg / 64),
  ], 9 * o.shape.c * oh * ow);
}

/** Appends the pooling backward: `dy` (output gradient) → `dx` (input gradient). */
export async function maxPoolBackward(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  o: { label: string; shape: PoolShape; dy: View; argmax: GPUBuffer; dx: View },
): Promise<void> {
  const n = o.shape.c * o.shape.h * o.shape.w;
  const nseg = Math.ceil(Math.ceil(o.shape.w / 2) / Q);
  const pipeline = await ctx.pipelines.get({
    name: "pool.wgsl",
    source,
    template: { Q },
    entry: "backward",
  });
  const u = ctx.uniform(scope, words(o.shape, o.dy.offset, o.dx.offset, nseg), `${o.label}.params`);
  prog.dispatch(o.label, pipeline, [u, o.dy.buffer, o.dx.buffer, o.argmax], [
    Math.ceil(o.shape.c * Math.ceil(o.shape.h / 2) * nseg / 64),
  ], n);
}
