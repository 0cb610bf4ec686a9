/**
 * The contract between a loss term and the plan that records it
 * (src/engine/loss/plan.ts). A term is one module that says everything about
 * itself: the part of the spec it reads, the targets it uploads, the partial
 * sums it leaves, the launches of its forward and backward, how it splits over
 * the tiles of a large image (each tile sums over the positions it owns,
 * src/engine/model/tiles.ts) and which launch of the network's backward it can
 * ride on when the image is run whole. The plan runs the network and asks the
 * terms, in the registry's order (src/engine/loss/mod.ts), at each step.
 *
 * A step of the plan, per tile (a whole image is one tile owning everything):
 * 1. {@link LossTerm.accumulate} and {@link LossTerm.reduce}: statistics over
 *    the whole image that the backward needs (a Gram matrix and its loss) —
 *    first over every tile (pass A), then reduced; on a whole image, just
 *    before the backward reaches the layer, so their launches stay next to it;
 * 2. the network's backward, into which each term adds its gradient at the
 *    layers it reads ({@link LossTerm.inject}) or, whole, fuses it into the
 *    launch writing that gradient ({@link LossTerm.fusePointwise});
 * 3. terms on the image itself ({@link LossTerm.injectImage}), after the
 *    backward wrote the tile's image gradient, or fused into that write
 *    ({@link LossTerm.fuseImage});
 * 4. pixel-wise terms on the whole image ({@link LossTerm.injectBands}),
 *    once every tile's gradient is in.
 * @module
 */
import type { Setting } from "../errors.ts";
import type { Program } from "../gpu/scheduler.ts";
import type { TvTerm } from "../ops/conv.ts";
import type { FeatureTexture, OpContext, Scope, View } from "../ops/context.ts";
import type { Pooling } from "../ops/pool.ts";
import type { Forward, NetWeights, PointwiseFusion } from "../model/squeezenet.ts";
import type { Tile, TileGrid } from "../model/tiles.ts";
import type { ImageBuffers } from "../model/image_buffers.ts";

export type { PointwiseFusion };

/** What terms record with: the op context, the plan's scope and program, the network. */
export interface Recorder {
  ctx: OpContext;
  net: NetWeights;
  scope: Scope;
  prog: Program;
  /** How the network's pool layers pool. */
  pooling: Pooling;
}

/** The names under which terms report their values ({@link LossTerms}). */
export const TERM_KINDS = ["content", "style", "tv", "temporal"] as const;

/** One of {@link TERM_KINDS}. */
export type TermKind = typeof TERM_KINDS[number];

/** The weight a term's value grows with: named for messages, and the setting that sets it. */
export interface TermWeight {
  /** "the style weights". */
  name: string;
  setting: Setting;
}

/** The value of each kind of loss term (0 where no term of that kind runs). */
export type LossTerms = Record<TermKind, number>;

/**
 * A range of the plan's loss partial sums that one term (at one layer, for
 * style terms) writes; the CPU adds them up when it reads them.
 */
export interface Segment {
  /** First float in the partials buffer. */
  start: number;
  /** Floats written (at most the capacity the term asked for). */
  count: number;
  /** The kind of term the sum adds to. */
  kind: TermKind;
  /** What the sum is, for messages ("the style loss at conv1"). */
  what: string;
  /** The weight to lower when the sum is not finite. */
  weight: TermWeight;
}

/** A term's request for partial sums: floats it may write, and what they are. */
export interface SegmentRequest {
  kind: TermKind;
  what: string;
  weight: TermWeight;
  capacity: number;
}

/**
 * The part of a layer's output that the tile owns, as the loss kernels read
 * it: the whole layer (a whole image), its owned rows in place (row tiles:
 * each plane's `npix` pixels from an offset, planes the layer's stride
 * apart), or a compact copy of the owned rectangle (other tiles).
 */
export interface OwnedF {
  c: number;
  rows: number;
  cols: number;
  npix: number;
  /** F's owned part: offset and plane stride. */
  f: View;
  /** A texture copy of F's buffer, where the plan made one. */
  tex?: FeatureTexture;
  /** Whether `f` is the layer's output itself (whole or row tiles) or a compact copy. */
  inPlace: boolean;
  /** Launch labels of the part start with it ("tile2.fire3"). */
  label: string;
  /**
   * Row tiles: the pixels of each plane a 1×1 launch writing F's gradient
   * computes (the owned rows, rounded up to a vec4); else the whole plane.
   */
  extent?: number;
}

/** Where a term adds its gradient at a layer. */
export interface LayerGrad {
  /** The owned part of F the gradient is for. */
  own: OwnedF;
  /** d loss / d F of the owned part, laid out as `own.f` (plane stride included). */
  grad: View;
  /**
   * The gradient holds nothing yet: a term that can ({@link LossTerm.overwrites})
   * writes instead of adding.
   */
  fresh: boolean;
  /**
   * The layer's ReLU output, when the term writes the layer's gradient last
   * and may fuse the ReLU backward into that write (it then says so).
   */
  relu: View | null;
}

/** One tile's network as the terms see it. */
export interface TileView {
  grid: TileGrid;
  tile: Tile;
  /** The tile is the whole image (one tile): fusions are possible. */
  whole: boolean;
  /** The tile's forward (run on the tile's input rectangle). */
  fwd: Forward;
  /** The tile's image [3][h][w] (dense) and its size. */
  input: GPUBuffer;
  h: number;
  w: number;
  /** The owned part of layer `i` (cropped on first use where not in place). */
  owned(i: number): Promise<OwnedF>;
  /** Whether the tile owns no position of layer `i` (a deep layer in a thin last tile). */
  ownsNothing(i: number): boolean;
}

/**
 * One loss term of a plan, made by its module's `create` for one spec (of
 * type `S`, its part of the loss spec), one image size and one grid.
 */
export interface LossTerm<S = unknown> {
  /** Layers (network indices) whose outputs it reads and whose gradients it adds to. */
  readonly layers: readonly number[];
  /** Layers whose outputs it reads often: the plan copies them into textures. */
  readonly textured: readonly number[];
  /** Partial sums it writes (the plan gives it their views, in order). */
  readonly segments: readonly SegmentRequest[];
  /** Whether its first gradient write at a layer can overwrite (see {@link LayerGrad.fresh}). */
  readonly overwrites: boolean;
  /** Receives the views of its segments, before anything is recorded. */
  bind(parts: View[], segments: Segment[]): void;
  /** Records the tile's share of layer `i`'s whole-image statistics. */
  accumulate?(v: TileView, i: number): Promise<void>;
  /** Records layer `i`'s statistics over all tiles (after every {@link accumulate}). */
  reduce?(i: number): Promise<void>;
  /**
   * Whole images only: the fused form of its gradient at layer `i` for the
   * 1×1 launch writing that gradient, when it is the only term there; the
   * term then adds nothing at `i` through {@link inject}.
   */
  fusePointwise?(v: TileView, i: number): Promise<PointwiseFusion | null>;
  /**
   * Records d term / d F at layer `i` of the tile's owned part into
   * `g.grad`; returns whether it applied the ReLU backward (`g.relu`).
   */
  inject?(v: TileView, i: number, g: LayerGrad): Promise<boolean>;
  /** Whole images only: the fused form of an image term for the image gradient's launch. */
  fuseImage?(v: TileView): TvTerm | null;
  /** Records the term on the tile's owned pixels of the image, added into `grad`. */
  injectImage?(v: TileView, grad: View): Promise<void>;
  /**
   * Records a pixel-wise term on the whole image's bands of rows, added into
   * its gradient once every tile's is in.
   */
  injectBands?(x: ImageBuffers, grad: ImageBuffers): Promise<void>;
  /** Uploads the spec's targets (content features, Grams, masks…). */
  write(queue: GPUQueue, spec: S): void;
}
