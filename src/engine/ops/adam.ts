/**
 * Adam wrapper over src/engine/shaders/adam.wgsl: one step on the image followed by
 * the clamp to valid pixels. The step's hyper-parameters live in a uniform
 * buffer rewritten (queue.writeBuffer) before each iteration's submission.
 * @module
 */
import source from "../shaders/adam.wgsl" with { type: "text" };
import { grid2d, type Program } from "../gpu/scheduler.ts";
import type { OpContext, Scope } from "./context.ts";

/** Adam's constants (PyTorch defaults but the learning rate). */
export interface AdamConfig {
  beta1: number;
  beta2: number;
  eps: number;
}

/**
 * The step-dependent values for step `t` (1-based) at learning rate `lr`;
 * `flagAt` is the u32 index in the flag buffer of the non-finite-gradient
 * flag, `decay` the iterate average's (with an average).
 */
export function adamParams(
  n: number,
  hw: number,
  t: number,
  lr: number,
  cfg: AdamConfig,
  lo: number[],
  hi: number[],
  flagAt = 0,
  decay = 0,
): Uint32Array<ArrayBuffer> {
  const buf = new ArrayBuffer(80);
  new Uint32Array(buf).set([n, hw, flagAt, 0]);
  new Float32Array(buf).set([
    lr,
    cfg.beta1,
    cfg.beta2,
    cfg.eps,
    1 - cfg.beta1 ** t,
    1 - cfg.beta2 ** t,
    decay,
    0,
    ...lo.slice(0, 4),
    ...new Array(4 - Math.min(4, lo.length)).fill(0),
    ...hi.slice(0, 4),
    ...new Array(4 - Math.min(4, hi.length)).fill(0),
  ], 4);
  return new Uint32Array(buf);
}

/**
 * Appends an Adam step over `n` elements (x [3][n/3], channel planes `n/3`
 * apart), which sets the non-finite-gradient flag (u32 `flagAt` of `flags`)
 * to 1 when a gradient element is ±inf or NaN (the caller clears it before
 * an iteration's steps) and, with `avg`, updates the iterate average; returns
 * the uniform buffer to rewrite with {@link adamParams} before each
 * submission.
 */
export async function adamStep(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  o: {
    label: string;
    n: number;
    grad: GPUBuffer;
    x: GPUBuffer;
    m: GPUBuffer;
    v: GPUBuffer;
    flags: GPUBuffer;
    flagAt: number;
    avg?: GPUBuffer;
  },
): Promise<GPUBuffer> {
  const pipeline = await ctx.pipelines.get({
    name: "adam.wgsl",
    source,
    entry: "step",
    constants: { AVG: o.avg ? 1 : 0 },
  });
  const u = ctx.uniform(scope, new Uint32Array(20), `${o.label}.params`);
  const bytes = Math.ceil(o.n / 4) * 16;
  if ([o.grad, o.x, o.m, o.v, ...(o.avg ? [o.avg] : [])].some((b) => b.size < bytes)) {
    throw new RangeError(`${o.label}: buffers must hold ${bytes} bytes (whole vec4s)`);
  }
  // Without an average the kernel skips binding 6, but its layout still has it.
  const groups = Math.ceil(o.n / 256);
  const max = ctx.device.limits.maxComputeWorkgroupsPerDimension;
  prog.dispatch(
    o.label,
    pipeline,
    [u, o.grad, o.x, o.m, o.v, o.flags, o.avg ?? ctx.dummy],
    grid2d(groups, max),
    12 * o.n,
  );
  return u;
}
