/**
 * What an image size costs the engine and whether it can run: the layers a
 * size has, the grid of tiles it is split into when its activations do not
 * fit the buffer limit (src/engine/model/tiles.ts), the GPU memory a run is
 * expected to take, and the checks that refuse a size with one line.
 * @module
 */
import { UserError } from "../errors.ts";
import type { OpContext } from "../ops/context.ts";
import { layerDims, SQUEEZENET, TAP_NAMES, tapLayerIndex, type TapName } from "./squeezenet.ts";
import { tileLargestBuffer } from "./tiled_plan.ts";
import { chooseGrid, rectSize, type TileGrid, tileHalo } from "./tiles.ts";

/** The most pixels any tile of a grid runs its network on. */
export function largestTile(grid: TileGrid): number {
  return Math.max(...grid.tiles.map((t) => rectSize(t.input).reduce((a, b) => a * b)));
}

/** What a size check needs to know of a run. */
export interface SizeOptions {
  /** The deepest layer index run (default fire5's). */
  upto?: number;
  /** The content layer (its target is held for the run; default fire2). */
  contentLayer?: TapName;
  /** Iterate averaging on (one more image-sized buffer). */
  avg?: boolean;
  /** Regions of spatial control (their weights are held for the run). */
  regions?: number;
}

/** Checks that taps exist for an h×w image; returns the deepest layer index among them. */
export function deepestLayer(h: number, w: number, taps: readonly TapName[]): number {
  const dims = layerDims(h, w);
  let upto = 0;
  for (const t of taps) {
    const i = tapLayerIndex(t);
    if (i < 0) throw new UserError(`unknown layer "${t}"; layers: ${TAP_NAMES.join(", ")}`);
    if (i >= dims.length) {
      throw new UserError(
        `layer ${t} does not exist for a ${h}×${w} image (too small; ` +
          `${dims.length ? "deepest is " + SQUEEZENET[dims.length - 1].name : "no layer fits"})`,
      );
    }
    upto = Math.max(upto, i);
  }
  return upto;
}

const gib = (n: number) => `${(n / 2 ** 30).toFixed(1)} GiB`;

/** GPU memory a tile's plans take per pixel of its input, at most (measured: see estimateBytes). */
const PLAN_BYTES_PER_PIXEL = 800;

/**
 * The fewest pixels a tile chosen to fit memory may run on in an h×w image
 * (192² px, or a quarter of a smaller image): below it the halos (55 pixels
 * around fire5's owned positions) would be most of every tile, and the
 * grids of a large image thousands of tiles.
 */
export function minTilePixels(h: number, w: number): number {
  return Math.min(192 * 192, h * w / 4);
}

/** The engine's limits: the largest buffer, the most pixels a tile may have, the memory budget. */
export class Sizing {
  readonly #ctx: OpContext;
  #tilePixels: number;
  /** The GPU memory (bytes) a run may plan on (Infinity: no limit); set before planning. */
  memoryBudget: number;

  /** @param o the op context (its pool's buffer limit), and the optional limits */
  constructor(ctx: OpContext, o: { tilePixels?: number; memoryBudget?: number } = {}) {
    this.#ctx = ctx;
    this.#tilePixels = o.tilePixels ?? Infinity;
    this.memoryBudget = o.memoryBudget ?? Infinity;
  }

  /** The most pixels a tile's input may have now (Infinity: no limit but the buffers'). */
  get tilePixels(): number {
    return this.#tilePixels;
  }

  /** Lowers the most pixels a tile's input may have (after running out of memory). */
  limitTilePixels(pixels: number): void {
    this.#tilePixels = Math.min(this.#tilePixels, Math.max(1, Math.floor(pixels)));
  }

  /**
   * The most pixels a tile of an h×w image may have for its plans to fit the
   * budget beside the image-sized buffers (Infinity without a budget).
   */
  #budgetTilePixels(h: number, w: number, o: SizeOptions): number {
    if (!Number.isFinite(this.memoryBudget)) return Infinity;
    const most = (this.memoryBudget - this.#fixedBytes(h, w, o)) / PLAN_BYTES_PER_PIXEL;
    return most >= minTilePixels(h, w) ? most : 0;
  }

  /**
   * How an h×w image runs to layer `upto`: null when whole (every buffer of
   * its plans within the limit), else the grid of tiles it is split into.
   * Throws a {@link UserError} when not even tiles fit.
   */
  gridFor(h: number, w: number, upto: number, o: SizeOptions = {}): TileGrid | null {
    const max = this.#ctx.pool.maxBufferBytes;
    const budget = this.#budgetTilePixels(h, w, o);
    const most = Math.min(this.#tilePixels, budget);
    const fits = (th: number, tw: number) =>
      th * tw <= most && tileLargestBuffer(this.#ctx, th, tw, upto) <= max;
    if (fits(h, w)) return null;
    const grid = chooseGrid(h, w, upto, fits);
    if (!grid) {
      if (budget < this.#tilePixels) {
        // Tiles small enough for the budget would be too small to be worth it.
        const { stride, before, after } = tileHalo(upto);
        const [th, tw] = [h, w].map((n) => Math.min(n, stride + before + after));
        const need = this.#fixedBytes(h, w, o) +
          PLAN_BYTES_PER_PIXEL * Math.max(th * tw, minTilePixels(h, w));
        throw new UserError(
          `image too large for this GPU: ${w}×${h} needs over ${gib(need)} of GPU memory ` +
            `even in tiles, over the ${gib(this.memoryBudget)} it may use; use a smaller ` +
            "output size",
          ["size"],
        );
      }
      const why = `buffers of ${(max / 2 ** 20).toFixed(0)} MiB`;
      throw new UserError(
        `image too large: no split of ${w}×${h} into tiles fits ${why}; use a smaller output size`,
        ["size"],
      );
    }
    return grid;
  }

  /**
   * The GPU memory (bytes) a run on an h×w image is expected to take at its
   * peak: the image-sized buffers (the image, its gradient and Adam's two
   * moments, 12 bytes a pixel each, a fifth with iterate averaging), the
   * content target (the content layer's output), the regions' weights (one
   * float per position of each layer, at most a third of the image's
   * positions), and the plans of the largest tile run whole (≈ 800 bytes
   * per pixel of the tile's input, measured with the memory plan: 2048×1536
   * in two row tiles peaked at 1.57 GiB).
   */
  estimateBytes(h: number, w: number, o: SizeOptions = {}): number {
    const dims = layerDims(h, w);
    const upto = Math.min(o.upto ?? tapLayerIndex("fire5"), dims.length - 1);
    const grid = this.gridFor(h, w, upto, o);
    const tile = grid ? largestTile(grid) : h * w;
    return this.#fixedBytes(h, w, o) + PLAN_BYTES_PER_PIXEL * tile;
  }

  /**
   * What a run on an h×w image holds whatever its tiles: the image-sized
   * buffers (the image, its gradient and Adam's two moments, 12 bytes a pixel
   * each, a fifth with iterate averaging; the loop's staging buffers for the
   * image and its saved state, as many again), the content target, the
   * regions' weights (a third of the image's positions each, at most).
   */
  #fixedBytes(h: number, w: number, o: SizeOptions): number {
    const dims = layerDims(h, w);
    const content = dims[Math.min(tapLayerIndex(o.contentLayer ?? "fire2"), dims.length - 1)];
    const regions = 4 * (o.regions ?? 0) * Math.ceil(h * w / 3);
    return 2 * 12 * h * w * (o.avg ? 5 : 4) + 4 * content.c * content.h * content.w + regions;
  }

  /**
   * Throws a {@link UserError} when an h×w image is too small for the network,
   * cannot be run even in tiles (see {@link gridFor}), or is expected to take
   * more GPU memory than the budget ({@link estimateBytes}).
   */
  checkImageSize(h: number, w: number, o: SizeOptions = {}): void {
    const upto = o.upto ?? tapLayerIndex("fire5");
    const dims = layerDims(h, w);
    if (dims.length === 0) throw new UserError(`a ${h}×${w} image is too small (at least 3×3)`);
    // Before the grid: the image-sized buffers alone say no to huge sizes at once.
    if (24 * h * w > this.memoryBudget) {
      throw new UserError(
        `image too large for this GPU: ${w}×${h} needs over ${gib(24 * h * w)} of GPU memory, ` +
          `over the ${gib(this.memoryBudget)} it may use; use a smaller output size`,
        ["size"],
      );
    }
    const need = this.estimateBytes(h, w, { ...o, upto });
    if (need > this.memoryBudget) {
      throw new UserError(
        `image too large for this GPU: ${w}×${h} needs about ${gib(need)} of GPU memory, ` +
          `over the ${gib(this.memoryBudget)} it may use; use a smaller output size`,
        ["size"],
      );
    }
  }
}
