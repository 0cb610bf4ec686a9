/**
 * The short-term temporal term of video (Ruder, Dosovitskiy & Brox 2016):
 * w/D·Σ c·(x − ω)² over the image, ω the previous frame's output warped onto
 * this one by the optical flow (src/engine/video/flow.ts), c the flow's
 * consistency weights (0 where the check fails), D the number of pixels;
 * its gradient 2w/D·c·(x − ω) goes into the image's. A pixel-wise term: it
 * runs once on the whole image's bands of rows after every tile's gradient
 * is in (src/engine/shaders/temporal.wgsl), whole or tiled alike. Memory: ω
 * (12 bytes a pixel) and c (4). Tested against a float64 CPU reference,
 * whole and over tiles, by tests/temporal_term_test.ts (the op itself by
 * tests/temporal_test.ts).
 * @module
 */
import { UserError } from "../errors.ts";
import type { Tensor } from "../image/types.ts";
import { view } from "../ops/context.ts";
import { TEMPORAL_PARTS, temporalLoss } from "../ops/temporal.ts";
import { type ImageBuffers, imageBuffers, writeImageBuffers } from "../model/image_buffers.ts";
import type { TileGrid } from "../model/tiles.ts";
import type { LossTerm, Recorder } from "./term.ts";

/** The temporal term's part of a loss spec. */
export interface TemporalSpec {
  temporal?: {
    /** w_temp (the sum is divided by the number of pixels). */
    weight: number;
    /** ω: the previous output warped onto this frame, preprocessed [1, 3, H, W]. */
    target: Tensor;
    /** c: the consistency weights [1, 1, H, W], in [0, 1]. */
    weights: Tensor;
  };
}

/** Validates the temporal part of a spec for an h×w image; it reads no layer. */
export function checkTemporal(spec: TemporalSpec, _dims: unknown, h: number, w: number): number[] {
  const t = spec.temporal;
  if (!t) return [];
  if (!Number.isFinite(t.weight) || t.weight < 0) {
    throw new UserError(`loss weights must be ≥ 0, got ${t.weight}`, ["temporal-weight"]);
  }
  if (t.target.data.length !== 3 * h * w || t.weights.data.length !== h * w) {
    throw new UserError(
      `the temporal term needs ω [1,3,${h},${w}] and c [1,1,${h},${w}], got ` +
        `[${t.target.shape}] and [${t.weights.shape}]`,
    );
  }
  return [];
}

/** What of the temporal spec the recorded program depends on. */
export function temporalKey(spec: TemporalSpec): unknown {
  return spec.temporal && spec.temporal.weight > 0 ? spec.temporal.weight : null;
}

/** The temporal term of a plan; null without one (or with weight 0). */
export function createTemporal(
  r: Recorder,
  grid: TileGrid,
  spec: TemporalSpec,
): LossTerm<TemporalSpec> | null {
  const t = spec.temporal;
  if (!t || !(t.weight > 0)) return null;
  const { h, w } = grid;
  const omega = imageBuffers(r.scope, h, w, "temporal.omega");
  const c = r.scope.floats(h * w, "temporal.c");
  let parts = view(c);
  return {
    layers: [],
    textured: [],
    overwrites: false,
    segments: [{
      kind: "temporal",
      weight: { name: "the temporal weight", setting: "temporal-weight" },
      what: "the temporal loss",
      capacity: TEMPORAL_PARTS * omega.bands.length,
    }],
    bind(views) {
      [parts] = views;
    },
    async injectBands(x: ImageBuffers, grad: ImageBuffers): Promise<void> {
      for (const [k, b] of x.bands.entries()) {
        await temporalLoss(r.ctx, r.scope, r.prog, {
          label: x.bands.length > 1 ? `temporal.${k}` : "temporal",
          w,
          y0: b.y0,
          rows: b.rows,
          x: view(b.buffer),
          grad: view(grad.bands[k].buffer),
          omega: view(omega.bands[k].buffer),
          c: view(c),
          weight: t.weight / (h * w),
          parts: view(parts.buffer, parts.offset + k * TEMPORAL_PARTS),
        });
      }
    },
    write(queue, s) {
      writeImageBuffers(queue, omega, s.temporal!.target.data);
      queue.writeBuffer(c, 0, new Float32Array(s.temporal!.weights.data));
    },
  };
}
