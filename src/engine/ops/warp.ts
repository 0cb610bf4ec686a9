/**
 * Warp wrapper over src/engine/shaders/warp.wgsl: a [C][H][W] image sampled
 * bilinearly (or bicubically) at (x + u, y + v) by a flow field [2][H][W] — how a video
 * frame's previous stylised output is brought onto the next frame's pixels.
 * @module
 */
import source from "../shaders/warp.wgsl" with { type: "text" };
import { grid2d, type Program } from "../gpu/scheduler.ts";
import type { OpContext, Scope, View } from "./context.ts";

/** What {@link warp} needs. */
export interface WarpOptions {
  label: string;
  /** Channels of `src` and `out`. */
  c: number;
  /** The whole image's height. */
  h: number;
  /** The whole image's width. */
  w: number;
  /** The image sampled, whole, [C][H][W] (plane stride: `src.plane`, dense when absent). */
  src: View;
  /** The flow, [2][H][W] dense: u (columns) then v (rows), in pixels. */
  flow: View;
  /**
   * Where the warped rows go, [C][rows][W] (plane stride: `out.plane`, dense
   * rows·W when absent). Must not share a buffer with any other input.
   */
  out: View;
  /** The output rows y0 … y0 + count − 1 (default: all). */
  rows?: { y0: number; count: number };
  /**
   * "bilinear" (default), or "bicubic": Keys' kernel (a = −0.5, Pillow's),
   * 4×4 taps clamped to the image — sharper (a half-pixel bilinear shift is
   * a [½ ½] blur), its overshoot not clamped.
   */
  filter?: "bilinear" | "bicubic";
  /** Gets 1 where the sample lies inside the image, 0 outside, [H][W] (whole image). */
  valid?: View;
  /**
   * With `mask` ([H][W], whole image; the consistency weights c ∈ [0, 1]):
   * out = m·warped + (1 − m)·fallback, m = c inside the image and 0
   * outside. `fallback` is laid out as `out` (plane stride: `fallback.plane`,
   * dense rows·W when absent).
   */
  blend?: { mask: View; fallback: View };
}

/**
 * Appends the warp of `src` by `flow` into `out`: bilinear or bicubic, the sample
 * position clamped to the image; inside means within half a pixel of it
 * (src/engine/shaders/warp.wgsl).
 */
export async function warp(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  o: WarpOptions,
): Promise<void> {
  const { y0, count } = o.rows ?? { y0: 0, count: o.h };
  if (y0 < 0 || count < 0 || y0 + count > o.h) {
    throw new RangeError(`${o.label}: rows ${y0}…${y0 + count - 1} outside an image of ${o.h}`);
  }
  if (o.out.buffer === o.src.buffer) {
    throw new RangeError(`${o.label}: out and src must be different buffers`);
  }
  const pipeline = await ctx.pipelines.get({
    name: "warp.wgsl",
    source,
    entry: "warp",
    constants: {
      VALID: o.valid ? 1 : 0,
      BLEND: o.blend ? 1 : 0,
      CUBIC: o.filter === "bicubic" ? 1 : 0,
    },
  });
  const band = count * o.w;
  const u = ctx.uniform(
    scope,
    new Uint32Array([
      o.w,
      o.h,
      o.c,
      y0,
      count,
      o.src.offset,
      o.src.plane ?? o.h * o.w,
      o.flow.offset,
      o.out.offset,
      o.out.plane ?? band,
      o.valid?.offset ?? 0,
      o.blend?.mask.offset ?? 0,
      o.blend?.fallback.offset ?? 0,
      o.blend?.fallback.plane ?? band,
      0,
      0,
    ]),
    `${o.label}.params`,
  );
  const max = ctx.device.limits.maxComputeWorkgroupsPerDimension;
  const [gy, gz] = grid2d(count, max);
  prog.dispatch(
    o.label,
    pipeline,
    [
      u,
      o.src.buffer,
      o.flow.buffer,
      o.out.buffer,
      o.valid?.buffer ?? ctx.sink,
      o.blend?.mask.buffer ?? ctx.dummy,
      o.blend?.fallback.buffer ?? ctx.dummy,
    ],
    [Math.ceil(o.w / 64), gy, gz],
    (o.filter === "bicubic" ? 32 : 8) * o.c * band,
  );
}
