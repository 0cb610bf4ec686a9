/**
 * The optical flow between two video frames, on the GPU, made once per
 * frame size and run once per frame: forward (t−1 → t) and backward
 * (t → t−1) flows by a coarse-to-fine variational method
 * (src/engine/shaders/flow.wgsl), the consistency weights c of frame t
 * (forward–backward, motion boundaries, photometric: 0 where a test fails,
 * 1 elsewhere), and the warps a frame's optimisation needs: the previous
 * output brought onto frame t (ω of the temporal loss,
 * src/engine/ops/temporal.ts) and the first iterate (ω where c = 1, the
 * content elsewhere).
 *
 * ```ts
 * const ff = await FrameFlow.create(ctx, scope, { h, w });
 * ff.write(device.queue, prevContent, nextContent); // preprocessed [3][h][w]
 * ff.run(device);                                   // or encode ff.program yourself
 * await ff.warp(prog, { src: view(prevOutput), out: view(omega) });
 * await ff.warp(prog, { src: view(prevOutput), out: view(x), fallback: view(content) });
 * ```
 * @module
 */
import { Program } from "../gpu/scheduler.ts";
import { type OpContext, type Scope, type View, view } from "../ops/context.ts";
import { FlowKernels } from "../ops/flow.ts";
import { warp } from "../ops/warp.ts";

/** The flow method's settings. */
export interface FlowOptions {
  /** Most pyramid levels (the frame itself included). */
  levels: number;
  /** The coarsest level's shorter side is at least this (pixels). */
  minSide: number;
  /** Warps (linearisations) per level. */
  warps: number;
  /** Diffusivity updates per warp. */
  lagged: number;
  /** Red-black SOR sweeps per diffusivity update. */
  sweeps: number;
  /** Smoothness weight α (luminance in 0..1). */
  alpha: number;
  /** SOR over-relaxation factor ω, in (0, 2). */
  omega: number;
  /** ε of the total-variation diffusivity ε/√(|∇u|² + |∇v|² + ε²). */
  eps: number;
  /**
   * The photometric check's threshold: c = 0 where a channel of the
   * previous frame warped onto the current one differs from the current
   * one by more than this (levels of 0..255).
   */
  photometric: number;
}

/** The defaults, chosen on the synthetic pairs of bench/flow_epe.ts (bench/FLOW.md). */
export const DEFAULT_FLOW_OPTIONS: FlowOptions = {
  levels: 6,
  minSide: 8,
  warps: 3,
  lagged: 2,
  sweeps: 10,
  alpha: 0.01,
  omega: 1.8,
  eps: 0.03,
  photometric: 20,
};

/**
 * The sizes [h, w] of the pyramid levels, finest first: each level halves
 * the last (rounding up) while its shorter side stays at least `minSide`,
 * `levels` at most.
 */
export function pyramidSizes(
  h: number,
  w: number,
  levels: number,
  minSide: number,
): [number, number][] {
  const sizes: [number, number][] = [[h, w]];
  while (sizes.length < levels) {
    const [lh, lw] = sizes[sizes.length - 1];
    const next: [number, number] = [Math.ceil(lh / 2), Math.ceil(lw / 2)];
    if (Math.min(...next) < minSide) break;
    sizes.push(next);
  }
  return sizes;
}

/** What {@link FrameFlow.warp} needs. */
export interface FrameWarpOptions {
  label?: string;
  /** The previous frame's image, whole, [3][h][w] (e.g. its stylised output). */
  src: View;
  /** Where the warped rows go, [3][rows][w]. */
  out: View;
  /** Output rows y0 … y0 + count − 1 (default: all). */
  rows?: { y0: number; count: number };
  /** The interpolation (ops/warp.ts): "bilinear" (default) or "bicubic". */
  filter?: "bilinear" | "bicubic";
  /**
   * With a fallback (laid out as `out`): out = ω where c = 1, the
   * fallback where c = 0 — the first iterate of frame t with the content
   * frame as the fallback.
   */
  fallback?: View;
}

/**
 * The flows and consistency weights of a pair of frames of one size; its
 * buffers and its {@link FrameFlow.program} are made once, run for every
 * pair.
 */
export class FrameFlow {
  /** Frame height. */
  readonly h: number;
  /** Frame width. */
  readonly w: number;
  /** Frame t−1, preprocessed [3][h][w] (the network's input layout). */
  readonly prev: View;
  /** Frame t, preprocessed [3][h][w]. */
  readonly next: View;
  /** Forward flow t−1 → t on frame t−1's pixels, [2][h][w] (u, v) in pixels. */
  readonly forward: GPUBuffer;
  /** Backward flow t → t−1 on frame t's pixels, [2][h][w]: frame t's p was at p + ŵ(p). */
  readonly backward: GPUBuffer;
  /** Consistency weights c of frame t, [h][w]: 1 where the flow is trusted, 0 elsewhere. */
  readonly weights: GPUBuffer;
  /** Computes the flows and the weights from the frames. */
  readonly program: Program;
  /** The pyramid's level sizes, finest first. */
  readonly levels: [number, number][];
  #ctx: OpContext;
  #scope: Scope;

  private constructor(
    ctx: OpContext,
    scope: Scope,
    o: {
      h: number;
      w: number;
      prev: View;
      next: View;
      forward: GPUBuffer;
      backward: GPUBuffer;
      weights: GPUBuffer;
      program: Program;
      levels: [number, number][];
    },
  ) {
    this.#ctx = ctx;
    this.#scope = scope;
    this.h = o.h;
    this.w = o.w;
    this.prev = o.prev;
    this.next = o.next;
    this.forward = o.forward;
    this.backward = o.backward;
    this.weights = o.weights;
    this.program = o.program;
    this.levels = o.levels;
  }

  /**
   * Makes the buffers and records the program for h×w frames. The frames
   * are read from `prev` and `next` when given (e.g. the engine's content
   * tensors), else from buffers of the plan's own ({@link FrameFlow.write}).
   * Throws a RangeError when a buffer would exceed the device's storage
   * binding limit (the motion tensor takes 20 bytes a pixel).
   */
  static async create(
    ctx: OpContext,
    scope: Scope,
    o: { h: number; w: number; prev?: View; next?: View; options?: Partial<FlowOptions> },
  ): Promise<FrameFlow> {
    const opt = { ...DEFAULT_FLOW_OPTIONS, ...o.options };
    const { h, w } = o;
    const limit = ctx.device.limits.maxStorageBufferBindingSize;
    if (5 * h * w * 4 > limit || 3 * h * w * 4 > limit) {
      throw new RangeError(`optical flow of ${w}×${h} frames: over the device's binding limit`);
    }
    const hw = h * w;
    const prev = o.prev ?? view(scope.floats(3 * hw, "flow.prev"));
    const next = o.next ?? view(scope.floats(3 * hw, "flow.next"));
    const levels = pyramidSizes(h, w, opt.levels, opt.minSide);
    const pyramid = (name: string) =>
      levels.map(([lh, lw], l) => scope.floats(lh * lw, `flow.${name}.${l}`));
    const pyrPrev = pyramid("prev");
    const pyrNext = pyramid("next");
    const half = levels.length > 1 ? levels[1][0] * levels[1][1] : 1;
    const work: Work = {
      tmp: scope.floats(2 * half, "flow.tmp"),
      dflow: scope.floats(2 * hw, "flow.dflow"),
      tensor: scope.floats(5 * hw, "flow.tensor"),
      tensor2: scope.floats(5 * hw, "flow.tensor2"),
      psi: scope.floats(hw, "flow.psi"),
    };
    const forward = scope.floats(2 * hw, "flow.forward");
    const backward = scope.floats(2 * hw, "flow.backward");
    const weights = scope.floats(hw, "flow.weights");
    const k = new FlowKernels(ctx, scope);
    const prog = new Program(ctx.device);
    await k.gray(prog, "flow.gray.prev", prev, pyrPrev[0], h, w);
    await k.gray(prog, "flow.gray.next", next, pyrNext[0], h, w);
    for (let l = 1; l < levels.length; l++) {
      const [sh, sw] = levels[l - 1];
      await k.down(prog, `flow.down.prev.${l}`, pyrPrev[l - 1], pyrPrev[l], sh, sw);
      await k.down(prog, `flow.down.next.${l}`, pyrNext[l - 1], pyrNext[l], sh, sw);
    }
    await solve(k, prog, "flow.forward", levels, pyrPrev, pyrNext, forward, work, opt);
    await solve(k, prog, "flow.backward", levels, pyrNext, pyrPrev, backward, work, opt);
    await k.check(prog, "flow.check", {
      prev,
      next,
      forward,
      backward,
      out: weights,
      h,
      w,
      tau: opt.photometric,
    });
    return new FrameFlow(ctx, scope, {
      h,
      w,
      prev,
      next,
      forward,
      backward,
      weights,
      program: prog,
      levels,
    });
  }

  /** Uploads frames t−1 and t (preprocessed [3][h][w]) into the plan's frame buffers. */
  write(queue: GPUQueue, prev: Float32Array<ArrayBuffer>, next: Float32Array<ArrayBuffer>): void {
    const n = 3 * this.h * this.w;
    if (prev.length !== n || next.length !== n) {
      throw new RangeError(`frames of ${prev.length} and ${next.length} values, not ${n}`);
    }
    queue.writeBuffer(this.prev.buffer, this.prev.offset * 4, prev);
    queue.writeBuffer(this.next.buffer, this.next.offset * 4, next);
  }

  /** Submits {@link FrameFlow.program} (one command buffer). */
  run(device: GPUDevice): void {
    const enc = device.createCommandEncoder();
    this.program.encode(enc);
    device.queue.submit([enc.finish()]);
  }

  /**
   * Appends the warp of `src` (an image of frame t−1) onto frame t by the
   * backward flow: ω, or with `fallback` the first iterate (ω where c = 1,
   * the fallback where c = 0 or the sample leaves the frame). Record once:
   * the launch reads whatever the buffers hold when it runs.
   */
  warp(prog: Program, o: FrameWarpOptions): Promise<void> {
    return warp(this.#ctx, this.#scope, prog, {
      label: o.label ?? (o.fallback ? "flow.init" : "flow.warp"),
      c: 3,
      h: this.h,
      w: this.w,
      src: o.src,
      flow: view(this.backward),
      out: o.out,
      rows: o.rows,
      filter: o.filter,
      blend: o.fallback ? { mask: view(this.weights), fallback: o.fallback } : undefined,
    });
  }
}

/** Work buffers shared by the levels and both directions (sized for the finest level). */
interface Work {
  /** The flow of odd levels (the even ones are in the output). */
  tmp: GPUBuffer;
  dflow: GPUBuffer;
  tensor: GPUBuffer;
  tensor2: GPUBuffer;
  psi: GPUBuffer;
}

/** Records the flow from pyramid `a` to pyramid `b` into `out`, coarse to fine. */
async function solve(
  k: FlowKernels,
  prog: Program,
  label: string,
  levels: [number, number][],
  a: GPUBuffer[],
  b: GPUBuffer[],
  out: GPUBuffer,
  work: Work,
  opt: FlowOptions,
): Promise<void> {
  const flowOf = (l: number) => l % 2 === 0 ? out : work.tmp;
  const top = levels.length - 1;
  for (let l = top; l >= 0; l--) {
    const [h, w] = levels[l];
    const flow = flowOf(l);
    const at = `${label}.${l}`;
    if (l === top) prog.clear(`${at}.zero`, flow, 0, 2 * h * w * 4);
    else await k.upsample(prog, `${at}.upsample`, flowOf(l + 1), flow, levels[l + 1], [h, w]);
    prog.clear(`${at}.dzero`, work.dflow, 0, 2 * h * w * 4);
    for (let i = 0; i < opt.warps; i++) {
      await level(k, prog, `${at}.${i}`, { a: a[l], b: b[l], flow, h, w }, work, opt);
    }
  }
}

/** Records one warp of one level: motion tensor, lagged diffusivity and SOR sweeps, commit. */
async function level(
  k: FlowKernels,
  prog: Program,
  at: string,
  o: { a: GPUBuffer; b: GPUBuffer; flow: GPUBuffer; h: number; w: number },
  work: Work,
  opt: FlowOptions,
): Promise<void> {
  const { flow, h, w } = o;
  const { tensor, tensor2, dflow, psi } = work;
  await k.derive(prog, `${at}.derive`, { a: o.a, b: o.b, flow, tensor, h, w });
  await k.blur(prog, `${at}.blur.x`, tensor, tensor2, h, w, 0);
  await k.blur(prog, `${at}.blur.y`, tensor2, tensor, h, w, 1);
  for (let g = 0; g < opt.lagged; g++) {
    await k.diffusivity(prog, `${at}.psi`, { flow, dflow, psi, h, w, eps: opt.eps });
    for (let s = 0; s < opt.sweeps; s++) {
      for (const parity of [0, 1] as const) {
        await k.sor(prog, `${at}.sor`, {
          tensor,
          psi,
          flow,
          dflow,
          h,
          w,
          parity,
          alpha: opt.alpha,
          omega: opt.omega,
        });
      }
    }
  }
  await k.commit(prog, `${at}.commit`, flow, dflow, h, w);
}
