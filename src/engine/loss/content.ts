/**
 * The content term: w·Σ(F − P)² at one layer (reference.py's `content_loss`),
 * F the image's features there, P the content image's, and its gradient
 * 2w·(F − P) into the layer's gradient. Run whole, it rides on the 1×1 launch
 * that writes the layer's gradient when it is alone there (pointwise.wgsl,
 * CONTENT: P is then also kept in a texture); otherwise it has a launch of its
 * own (loss.wgsl `content`), on each tile's owned positions. Memory: P (once
 * per image, split by tiles), its texture copy when whole. Tested against the
 * reference's goldens by tests/backward_test.ts, whole against tiles by
 * tests/tiles_test.ts.
 * @module
 */
import { UserError } from "../errors.ts";
import { pointwiseInvocations } from "../ops/conv.ts";
import { type FeatureTexture, planeStride, type View, view } from "../ops/context.ts";
import { contentLoss, LOSS_PARTS } from "../ops/loss.ts";
import { type Dims, layerDims, tapLayerIndex, type TapName } from "../model/squeezenet.ts";
import { globalRect, tileTarget } from "../model/tiled_plan.ts";
import { type Rect, rectSize } from "../model/tiles.ts";
import type {
  LayerGrad,
  LossTerm,
  PointwiseFusion,
  Recorder,
  Segment,
  SegmentRequest,
  TileView,
} from "./term.ts";
import type { Tensor } from "../image/types.ts";
import type { TileGrid } from "../model/tiles.ts";

/** The content term's part of a loss spec. */
export interface ContentSpec {
  contentLayer: TapName;
  contentWeight: number;
  /** Target features P at `contentLayer` [1, C, H, W]. */
  contentTarget: Tensor;
}

/** Validates the content part of a spec for a layer stack `dims`; returns the layers it reads. */
export function checkContent(spec: ContentSpec, dims: Dims[]): number[] {
  if (!(spec.contentWeight > 0)) return [];
  const i = tapLayerIndex(spec.contentLayer);
  const d = dims[i];
  if (spec.contentTarget.data.length !== d.c * d.h * d.w) {
    throw new UserError(
      `content target must have the shape of ${spec.contentLayer} [1,${d.c},${d.h},${d.w}], ` +
        `got [${spec.contentTarget.shape}]`,
    );
  }
  return [i];
}

/** What of the content spec the recorded program depends on. */
export function contentKey(spec: ContentSpec): unknown {
  return spec.contentWeight > 0 ? [spec.contentLayer, spec.contentWeight] : null;
}

/** Copies `c` planes of `n` values `from` elements apart into planes `to` apart. */
export function repack(
  data: ArrayLike<number>,
  c: number,
  from: number,
  to: number,
): Float32Array<ArrayBuffer> {
  const out = new Float32Array(c * to);
  const n = Math.min(from, to);
  for (let k = 0; k < c; k++) {
    for (let i = 0; i < n; i++) out[k * to + i] = data[k * from + i];
  }
  return out;
}

/** A tile's target: P's owned part, laid out as the tile's owned F is. */
interface TileTarget {
  buffer: GPUBuffer;
  rect: Rect;
  c: number;
  plane: number;
}

/** The content term of a plan (see the module doc); null without a content weight. */
export function createContent(
  r: Recorder,
  grid: TileGrid,
  spec: ContentSpec,
): LossTerm<ContentSpec> | null {
  if (!(spec.contentWeight > 0)) return null;
  const i = tapLayerIndex(spec.contentLayer);
  const whole = grid.tiles.length === 1;
  const full = layerDims(grid.h, grid.w)[i];
  const plane = planeStride(full.h, full.w);
  const fusedParts = pointwiseInvocations(r.ctx, full.c, plane);
  // Whole: P with the layer's plane stride (and in a texture, for the fused
  // launch); tiles: each tile's owned part as its owned F is laid out (row
  // tiles read F in place, with the tile layer's planes).
  const targets: (TileTarget | null)[] = grid.tiles.map((tile) => {
    const [rows, cols] = rectSize(tile.layers[i]);
    if (rows <= 0 || cols <= 0) return null;
    const [th, tw] = rectSize(tile.input);
    const d = layerDims(th, tw)[i];
    const p = grid.cols === 1 ? planeStride(d.h, d.w) : planeStride(rows, cols);
    return {
      buffer: r.scope.floats(
        full.c * p,
        whole ? "content.target" : `content.target.tile${tile.index}`,
      ),
      rect: globalRect(tile, i),
      c: full.c,
      plane: p,
    };
  });
  const targetTex: FeatureTexture | null = whole
    ? r.scope.featureTexture(r.ctx.device, full.c * plane, "content.target.tex")
    : null;
  let parts: View;
  let segment: Segment;
  return {
    layers: [i],
    textured: [i],
    overwrites: false,
    segments: [{
      kind: "content",
      weight: { name: "the content weight", setting: "content-weight" },
      what: "the content loss",
      // Whole: LOSS_PARTS from its own launch, or one per invocation of the
      // 1×1 launch it is fused into; tiles: LOSS_PARTS per tile.
      capacity: whole ? Math.max(LOSS_PARTS, fusedParts) : LOSS_PARTS * grid.tiles.length,
    }] satisfies SegmentRequest[],
    bind(views, segments) {
      [parts] = views;
      [segment] = segments;
      if (whole) segment.count = LOSS_PARTS;
    },
    fusePointwise(_v: TileView, layer: number): Promise<PointwiseFusion | null> {
      if (layer !== i) return Promise.resolve(null);
      segment.count = fusedParts;
      return Promise.resolve({
        content: {
          target: targets[0]!.buffer,
          targetTex: targetTex ?? undefined,
          weight: spec.contentWeight,
          npix: full.h * full.w,
          parts,
        },
      });
    },
    async inject(v: TileView, layer: number, g: LayerGrad): Promise<boolean> {
      const t = targets[v.tile.index];
      if (layer !== i || !t) return false;
      const own = g.own;
      await contentLoss(r.ctx, r.scope, r.prog, {
        label: v.whole
          ? `${spec.contentLayer}.content`
          : `tile${v.tile.index}.${spec.contentLayer}.content`,
        c: own.c,
        h: own.rows,
        w: own.cols,
        f: own.f,
        target: t.buffer,
        weight: spec.contentWeight,
        grad: g.grad,
        parts: view(parts.buffer, parts.offset + (v.whole ? 0 : LOSS_PARTS * v.tile.index)),
        // The ReLU backward of a whole layer, fused into its last write.
        reluMask: g.relu !== null,
        // In place, F's last plane ends where its buffer does.
        lastPlaneShort: own.inPlace && !v.whole ? own.f.offset : undefined,
      });
      return g.relu !== null;
    },
    write(queue: GPUQueue, s: ContentSpec): void {
      for (const t of targets) {
        if (!t) continue;
        const p = whole
          ? repack(s.contentTarget.data, full.c, full.h * full.w, plane)
          : tileTarget(s.contentTarget.data, full, t);
        queue.writeBuffer(t.buffer, 0, p);
        if (whole && targetTex) {
          // The texture holds P's vec4s in order, whole rows (zeros past P).
          const data = new Float32Array(targetTex.floats);
          data.set(p);
          queue.writeTexture(
            { texture: targetTex.texture },
            data,
            { bytesPerRow: targetTex.width * 16 },
            [targetTex.width, targetTex.height],
          );
        }
      }
    },
  };
}
