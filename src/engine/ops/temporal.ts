/**
 * The temporal-loss wrapper over src/engine/shaders/temporal.wgsl: a video
 * frame's short-term temporal loss s·Σ c·(x − ω)² and its gradient (added
 * into the image's gradient), ω the previous output warped onto the frame
 * and c the consistency weights. Like the other loss terms it leaves
 * partial sums, which the CPU adds up when it reads them.
 * @module
 */
import temporalSource from "../shaders/temporal.wgsl" with { type: "text" };
import workgroupSum from "../shaders/workgroup_sum.wgsl" with { type: "text" };
import type { Program } from "../gpu/scheduler.ts";
import type { OpContext, Scope, View } from "./context.ts";

const source = `${workgroupSum}\n${temporalSource}`;

/** Partial sums a temporal-loss launch writes (its workgroups). */
export const TEMPORAL_PARTS = 32;

/**
 * Appends L = weight·Σ_p c[p]·Σ_ch (x − ω)² ({@link TEMPORAL_PARTS} partial
 * sums into `parts`) and grad += 2·weight·c·(x − ω), over the rows
 * y0 … y0 + rows − 1 of a 3-channel image w pixels wide. `x`, `grad` and
 * `omega` hold those rows, [3][rows][w], each with its plane stride (dense
 * rows·w when absent); `c` is the whole image's [H][w] map of weights
 * (view at row 0), of which rows y0… are read. Ruder et al.'s
 * w_temp/D·Σ c·(x − ω)² is `weight` = w_temp / D with D the image's pixel
 * count (H·w, not the band's). Pixels with c = 0 add nothing. `grad` and
 * `parts` must be different buffers, neither holding x, ω or c.
 */
export async function temporalLoss(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  o: {
    label: string;
    w: number;
    y0: number;
    rows: number;
    x: View;
    grad: View;
    omega: View;
    c: View;
    weight: number;
    parts: View;
  },
): Promise<void> {
  const n = o.rows * o.w;
  const pipeline = await ctx.pipelines.get({ name: "temporal.wgsl", source, entry: "temporal" });
  const buf = new ArrayBuffer(48);
  new Uint32Array(buf).set([
    n,
    o.x.offset,
    o.x.plane ?? n,
    o.grad.offset,
    o.grad.plane ?? n,
    o.omega.offset,
    o.omega.plane ?? n,
    o.c.offset + o.y0 * o.w,
    o.parts.offset,
  ]);
  new Float32Array(buf).set([o.weight], 9);
  const u = ctx.uniform(scope, new Uint32Array(buf), `${o.label}.params`);
  prog.dispatch(
    o.label,
    pipeline,
    [u, o.x.buffer, o.omega.buffer, o.c.buffer, o.grad.buffer, o.parts.buffer],
    [TEMPORAL_PARTS],
    12 * n,
  );
}
