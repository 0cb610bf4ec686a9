/**
 * The total-variation term: w·(Σ(x[y+1] − x[y])² + Σ(x[x+1] − x[x])²) over the
 * preprocessed image (reference.py's `tv_loss`), and its gradient into the
 * image's. Run whole, it rides on the launch that writes the image gradient
 * (conv_s2_backward.wgsl, TV); over tiles each tile sums the pairs whose
 * first pixel it owns (loss.wgsl `tv`). Memory: none but its partial sums.
 * Tested against the reference's goldens by tests/backward_test.ts, whole
 * against tiles by tests/tiles_test.ts.
 * @module
 */
import { UserError } from "../errors.ts";
import { stridedBackwardInvocations, type TvTerm } from "../ops/conv.ts";
import { type View, view } from "../ops/context.ts";
import { LOSS_PARTS, tvLoss } from "../ops/loss.ts";
import type { TileGrid } from "../model/tiles.ts";
import type { LossTerm, Recorder, Segment, TileView } from "./term.ts";

/** The TV term's part of a loss spec. */
export interface TvSpec {
  tvWeight: number;
}

/** Validates the TV weight. */
export function checkTv(spec: TvSpec): number[] {
  if (!Number.isFinite(spec.tvWeight) || spec.tvWeight < 0) {
    throw new UserError(`loss weights must be ≥ 0, got ${spec.tvWeight}`);
  }
  return [];
}

/** What of the TV spec the recorded program depends on. */
export function tvKey(spec: TvSpec): unknown {
  return spec.tvWeight > 0 ? spec.tvWeight : null;
}

/** The TV term of a plan; null without a TV weight. */
export function createTv(r: Recorder, grid: TileGrid, spec: TvSpec): LossTerm<TvSpec> | null {
  if (!(spec.tvWeight > 0)) return null;
  const whole = grid.tiles.length === 1;
  const fusedParts = stridedBackwardInvocations(r.ctx, grid.h, grid.w);
  let parts: View;
  let segment: Segment;
  return {
    layers: [],
    textured: [],
    overwrites: false,
    segments: [{
      kind: "tv",
      weight: { name: "the TV weight", setting: "tv-weight" },
      what: "the total-variation loss",
      capacity: whole ? Math.max(fusedParts, LOSS_PARTS) : LOSS_PARTS * grid.tiles.length,
    }],
    bind(views, segments) {
      [parts] = views;
      [segment] = segments;
      segment.count = whole ? LOSS_PARTS : segment.count;
    },
    fuseImage(v: TileView): TvTerm {
      segment.count = fusedParts;
      return { x: v.input, weight: spec.tvWeight, parts };
    },
    async injectImage(v: TileView, grad: View): Promise<void> {
      const o = v.tile.owned;
      const i0 = v.tile.input;
      await tvLoss(r.ctx, r.scope, r.prog, {
        label: v.whole ? "tv" : `tile${v.tile.index}.tv`,
        c: 3,
        h: v.h,
        w: v.w,
        x: view(v.input),
        grad,
        rect: { y0: o.y0 - i0.y0, y1: o.y1 - i0.y0, x0: o.x0 - i0.x0, x1: o.x1 - i0.x0 },
        weight: spec.tvWeight,
        parts: view(parts.buffer, parts.offset + LOSS_PARTS * v.tile.index),
      });
    },
    write() {},
  };
}
