/**
 * ReLU backward wrapper over src/engine/shaders/relu.wgsl: masks a gradient in place
 * by its ReLU output (the forward ReLU is fused into the convolutions).
 * @module
 */
import source from "../shaders/relu.wgsl" with { type: "text" };
import { grid2d, type Program } from "../gpu/scheduler.ts";
import type { OpContext, Scope, View } from "./context.ts";

/** Appends g ← g·(y > 0) over `n` elements. */
export async function reluBackward(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  o: { label: string; n: number; grad: View; y: View },
): Promise<void> {
  const pipeline = await ctx.pipelines.get({ name: "relu.wgsl", source, entry: "backward" });
  const u = ctx.uniform(
    scope,
    new Uint32Array([o.n, o.grad.offset, o.y.offset, 0]),
    `${o.label}.params`,
  );
  const groups = Math.ceil(o.n / 256);
  const max = ctx.device.limits.maxComputeWorkgroupsPerDimension;
  prog.dispatch(o.label, pipeline, [u, o.grad.buffer, o.y.buffer], grid2d(groups, max), o.n);
}
