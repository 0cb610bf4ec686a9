/**
 * Crop wrapper over src/engine/shaders/crop.wgsl: windows of [C][H][W]
 * tensors copied out of a larger one ({@link crop}) and, backward, added back
 * where they came from ({@link cropBackward}) — how an image is split into
 * tiles and how the tiles' gradients are summed into the image's.
 * @module
 */
import source from "../shaders/crop.wgsl" with { type: "text" };
import { grid2d, type Program } from "../gpu/scheduler.ts";
import type { OpContext, Scope } from "./context.ts";

/** A [C][H][W] tensor in a buffer: element offset, plane stride, row width. */
export interface Planes {
  buffer: GPUBuffer;
  /** Offset in elements of channel 0, row 0, column 0. */
  offset: number;
  /** Elements from one channel plane to the next. */
  plane: number;
  /** Elements from one row to the next. */
  width: number;
}

/** A window: `rows`×`cols` elements of each of `c` channels. */
export interface Window {
  c: number;
  rows: number;
  cols: number;
}

/** Appends one rect launch: src's window at (sy, sx) to dst's at (dy, dx). */
async function rect(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  label: string,
  win: Window,
  src: Planes,
  [sy, sx]: [number, number],
  dst: Planes,
  [dy, dx]: [number, number],
  add: boolean,
): Promise<void> {
  const n = win.c * win.rows * win.cols;
  if (n === 0) return;
  const pipeline = await ctx.pipelines.get({
    name: "crop.wgsl",
    source,
    entry: "rect",
    constants: { ADD: add ? 1 : 0 },
  });
  const u = ctx.uniform(
    scope,
    new Uint32Array([
      win.c,
      win.rows,
      win.cols,
      0,
      src.offset + sy * src.width + sx,
      src.plane,
      src.width,
      0,
      dst.offset + dy * dst.width + dx,
      dst.plane,
      dst.width,
      0,
    ]),
    `${label}.params`,
  );
  const max = ctx.device.limits.maxComputeWorkgroupsPerDimension;
  const [gy, gz] = grid2d(win.rows, max);
  prog.dispatch(label, pipeline, [u, src.buffer, dst.buffer], [
    Math.ceil(win.cols / 64),
    gy,
    gz,
  ], add ? n : 0);
}

/**
 * Appends a crop: the window of `src` whose corner is at row `y`, column `x`
 * is copied to the start of `dst` (its rows `dst.width` apart).
 */
export function crop(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  o: { label: string; win: Window; src: Planes; y: number; x: number; dst: Planes },
): Promise<void> {
  return rect(ctx, scope, prog, o.label, o.win, o.src, [o.y, o.x], o.dst, [0, 0], false);
}

/**
 * Appends a crop's backward: `grad` (laid out as the crop) is added into
 * `into`'s window whose corner is at row `y`, column `x`.
 */
export function cropBackward(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  o: { label: string; win: Window; grad: Planes; into: Planes; y: number; x: number },
): Promise<void> {
  return rect(ctx, scope, prog, o.label, o.win, o.grad, [0, 0], o.into, [o.y, o.x], true);
}
