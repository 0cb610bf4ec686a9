/**
 * Splitting an image into tiles the network can run on one at a time, with
 * results equal to the whole image's. Each tile *owns* a rectangle of the
 * image, and of every layer the rectangle of positions its image rectangle
 * maps to (a layer of stride s owns rows y0/s…y1/s); the owned rectangles of
 * the tiles partition every layer. A tile's network runs on its rectangle
 * grown by a halo — the receptive field of its owned positions — so every
 * owned position, and every position an owned one depends on, is computed
 * exactly as on the whole image: the losses are summed over owned positions
 * only, the Gram matrices are summed over the tiles, and the gradients the
 * tiles' owned losses send back to their (overlapping) inputs add up to the
 * image's gradient. Tile corners sit on multiples of the deepest layer's
 * stride, so each tile's pooling windows fall where the whole image's do.
 * @module
 */
import { layerDims, SQUEEZENET } from "./squeezenet.ts";

/** A half-open rectangle: rows y0…y1−1, columns x0…x1−1. */
export interface Rect {
  y0: number;
  y1: number;
  x0: number;
  x1: number;
}

/** One tile of a {@link TileGrid}. */
export interface Tile {
  /** Its index in the grid (row-major). */
  index: number;
  /** The image rectangle its network runs on (owned part and halo). */
  input: Rect;
  /** The image rectangle it owns (the pixels whose TV pairs it sums). */
  owned: Rect;
  /**
   * For each layer up to the grid's deepest: the rectangle of that layer's
   * output the tile owns, in the tile's own coordinates (those of the
   * layer's output of the network run on `input`).
   */
  layers: Rect[];
}

/** An image split into tiles (one tile: the whole image, nothing to split). */
export interface TileGrid {
  /** Image height and width. */
  h: number;
  w: number;
  /** The deepest layer index the tiles' networks run to. */
  upto: number;
  /** Row-major: `rows` × `cols` tiles. */
  tiles: Tile[];
  rows: number;
  cols: number;
}

/** Stride of layer `i`'s output (in image pixels per output position). */
export function layerStride(i: number): number {
  let s = 1;
  for (let k = 0; k <= i; k++) {
    const l = SQUEEZENET[k];
    if (l.kind === "conv") s *= l.stride;
    else if (l.kind === "pool") s *= 2;
  }
  return s;
}

/**
 * The image rows (or columns) layer `i`'s output positions a…b−1 depend on,
 * walking the layers back: a k×k convolution of stride s and padding p needs
 * a·s−p … (b−1)·s−p+k−1, a 3×3 pooling of stride 2 needs 2a … 2(b−1)+2, a
 * fire module (1×1 then 3×3 with padding 1) a−1 … b.
 */
export function receptiveRange(i: number, a: number, b: number): [number, number] {
  for (let k = i; k >= 0; k--) {
    const l = SQUEEZENET[k];
    if (l.kind === "conv") [a, b] = [a * l.stride, (b - 1) * l.stride + l.k];
    else if (l.kind === "pool") [a, b] = [2 * a, 2 * (b - 1) + 3];
    else [a, b] = [a - 1, b + 1];
  }
  return [a, b];
}

/**
 * The halo a tile needs around its owned rectangle so that every position
 * of layers 0…`upto` it owns is computed exactly: pixels before and after,
 * the one before rounded up to a multiple of `align` times the grid's
 * stride (the stride of layer `upto`). One more pixel after, at least, for
 * the TV pairs that start on the last owned row.
 */
export function tileHalo(
  upto: number,
  align = 1,
): { before: number; after: number; stride: number } {
  const stride = layerStride(upto) * align;
  let before = 0;
  let after = 1;
  for (let i = 0; i <= upto; i++) {
    if (SQUEEZENET[i].kind === "pool") continue;
    const s = layerStride(i);
    // Owned rows a…b−1 of layer i map to image rows a·s…b·s−1.
    const a = 1000;
    const b = 1010;
    const [lo, hi] = receptiveRange(i, a, b);
    before = Math.max(before, a * s - lo);
    after = Math.max(after, hi - b * s);
  }
  return { before: Math.ceil(before / stride) * stride, after, stride };
}

/** Splits n into `parts` owned spans on multiples of `stride` (as even as that allows). */
function spans(n: number, parts: number, stride: number): [number, number][] {
  const cuts = [0];
  for (let k = 1; k < parts; k++) cuts.push(Math.round(k * n / parts / stride) * stride);
  cuts.push(n);
  const out: [number, number][] = [];
  for (let k = 0; k < parts; k++) {
    if (cuts[k + 1] <= cuts[k]) throw new RangeError(`cannot split ${n} into ${parts} tiles`);
    out.push([cuts[k], cuts[k + 1]]);
  }
  return out;
}

/**
 * Row tiles (one column) line up four layer rows at a time: every tile's
 * owned rows, and the rows before them in its input, are multiples of 4 at
 * every layer, so the rows a tile owns of a layer (whole rows: a slice of
 * each channel plane) start on a vec4 and span whole vec4s but for the last
 * tile's, which end the plane.
 */
const ROW_ALIGN = 4;

/**
 * The grid of `rows` × `cols` tiles over an h×w image for layers 0…`upto`.
 * Throws a RangeError when a tile would own less than the grid's stride.
 */
export function tileGrid(h: number, w: number, upto: number, rows: number, cols: number): TileGrid {
  const { before, after, stride } = tileHalo(upto, cols === 1 && rows > 1 ? ROW_ALIGN : 1);
  const full = layerDims(h, w);
  const ys = spans(h, rows, stride);
  const xs = spans(w, cols, stride);
  const tiles: Tile[] = [];
  for (const [r, [y0, y1]] of ys.entries()) {
    for (const [c, [x0, x1]] of xs.entries()) {
      const input = {
        y0: Math.max(0, y0 - before),
        y1: Math.min(h, y1 + after),
        x0: Math.max(0, x0 - before),
        x1: Math.min(w, x1 + after),
      };
      const layers: Rect[] = [];
      for (let i = 0; i <= upto; i++) {
        const s = layerStride(i);
        const d = full[i];
        layers.push({
          y0: y0 / s - input.y0 / s,
          y1: (r === rows - 1 ? d.h : y1 / s) - input.y0 / s,
          x0: x0 / s - input.x0 / s,
          x1: (c === cols - 1 ? d.w : x1 / s) - input.x0 / s,
        });
      }
      tiles.push({ index: tiles.length, input, owned: { y0, y1, x0, x1 }, layers });
    }
  }
  return { h, w, upto, tiles, rows, cols };
}

/** Height and width of a rectangle. */
export function rectSize(r: Rect): [number, number] {
  return [r.y1 - r.y0, r.x1 - r.x0];
}

/** The distinct lengths of the tiles' inputs along one axis of n split in `parts`. */
function inputLengths(
  n: number,
  parts: number,
  halo: { before: number; after: number; stride: number },
): Set<number> {
  return new Set(
    spans(n, parts, halo.stride).map(([a, b]) =>
      Math.min(n, b + halo.after) - Math.max(0, a - halo.before)
    ),
  );
}

/**
 * Whether every tile of {@link tileGrid}(h, w, upto, rows, cols) passes
 * `fits`, without building the grid: a tile's input is its row's height by
 * its column's width, and the rows (and columns) have a few distinct
 * lengths. False when the grid cannot be made.
 */
function gridFits(
  h: number,
  w: number,
  upto: number,
  rows: number,
  cols: number,
  fits: (th: number, tw: number) => boolean,
): boolean {
  const halo = tileHalo(upto, cols === 1 && rows > 1 ? ROW_ALIGN : 1);
  let heights: Set<number>, widths: Set<number>;
  try {
    heights = inputLengths(h, rows, halo);
    widths = inputLengths(w, cols, halo);
  } catch {
    return false;
  }
  for (const th of heights) {
    for (const tw of widths) if (!fits(th, tw)) return false;
  }
  return true;
}

/**
 * The grid of the fewest row tiles (one column: their owned rows are whole
 * slices of each layer's planes, which the kernels read in place) whose
 * every tile passes `fits` (given the tile's input height and width); else
 * the grid with the fewest tiles (then the squarest); null when even tiles
 * owning one stride fail it. One tile is the whole image.
 */
export function chooseGrid(
  h: number,
  w: number,
  upto: number,
  fits: (th: number, tw: number) => boolean,
): TileGrid | null {
  const row = tileHalo(upto, ROW_ALIGN);
  for (let rows = 1; rows <= Math.max(1, Math.floor(h / row.stride)); rows++) {
    // The tallest tile's input, before building the grid: a few thousand
    // candidates for a huge image cost nothing.
    const tallest = Math.min(
      h,
      Math.ceil(h / rows / row.stride + 1) * row.stride + row.before + row.after,
    );
    // (at most two strides taller than the real one: rounded cuts)
    if (!fits(Math.max(1, tallest - 2 * row.stride), w)) continue;
    if (gridFits(h, w, upto, rows, 1, fits)) return tileGrid(h, w, upto, rows, 1);
  }
  const { stride, before, after } = tileHalo(upto);
  // The largest tile input of n split in `parts` (before building any grid).
  const side = (n: number, parts: number) =>
    Math.min(n, Math.ceil(n / parts / stride + 1) * stride + before + after);
  if (!fits(side(h, Infinity), side(w, Infinity))) return null;
  const maxRows = Math.max(1, Math.floor(h / stride));
  const maxCols = Math.max(1, Math.floor(w / stride));
  // For each number of rows, the fewest columns whose (estimated) tiles fit:
  // smaller tiles fit whenever larger ones do, so a binary search finds it.
  const fewestCols = (rows: number): number | null => {
    const ok = (cols: number) => fits(side(h, rows) - 2 * stride, side(w, cols) - 2 * stride);
    if (!ok(maxCols)) return null;
    let [lo, hi] = [1, maxCols];
    while (lo < hi) {
      const mid = Math.floor((lo + hi) / 2);
      if (ok(mid)) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  };
  const squareness = (g: TileGrid) => Math.abs(Math.log((h / g.rows) / (w / g.cols)));
  let best: TileGrid | null = null;
  for (let rows = 1; rows <= maxRows; rows++) {
    if (best && rows > best.rows * best.cols) break;
    const from = fewestCols(rows);
    if (from === null) continue;
    // The estimate is optimistic (at most two strides off): the real grid is at or after it.
    for (let cols = from; cols <= maxCols; cols++) {
      if (best && rows * cols > best.rows * best.cols) break;
      // Built only once its tiles are known to fit (a grid near the memory
      // budget's limit has thousands of tiles).
      if (!gridFits(h, w, upto, rows, cols, fits)) continue;
      const grid = tileGrid(h, w, upto, rows, cols);
      if (
        !best || rows * cols < best.rows * best.cols ||
        (rows * cols === best.rows * best.cols && squareness(grid) < squareness(best))
      ) best = grid;
      break;
    }
  }
  return best;
}
