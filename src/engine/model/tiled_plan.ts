/**
 * The tiles of an image split by src/engine/model/tiles.ts, for images whose
 * activations do not fit the buffer limit whole: each tile cropped out of the
 * image-sized buffers and its network recorded with transient activations
 * (the memory plan gives every tile the same memory), its owned part of a
 * layer read in place (row tiles) or cropped into a compact tensor, on which
 * the kernels of the whole-image path run unchanged; and the programs built
 * from them that have no loss: a style image's Gram matrices (each tile's
 * partial sums collapsed, then reduced over the tiles) and features. The loss
 * plan over tiles is src/engine/loss/plan.ts.
 * @module
 */
import type { Program } from "../gpu/scheduler.ts";
import type { OwnedF } from "../loss/term.ts";
import { crop, type Planes } from "../ops/crop.ts";
import {
  featureTextureShape,
  type OpContext,
  planeStride,
  type Scope,
  view,
} from "../ops/context.ts";
import { gramCollapse, type GramGeometry, gramGeometry, gramPartials } from "../ops/gram.ts";
import type { Pooling } from "../ops/pool.ts";
import { cropImage, type ImageBuffers } from "./image_buffers.ts";
import {
  type Forward,
  layerDims,
  type NetWeights,
  recordForward,
  SQUEEZENET,
} from "./squeezenet.ts";
import { layerStride, type Rect, rectSize, type Tile, type TileGrid } from "./tiles.ts";

/** What the tiled programs need from the engine. */
export interface TiledContext {
  ctx: OpContext;
  net: NetWeights;
  scope: Scope;
  prog: Program;
  /** How the network's pool layers pool. */
  pooling: Pooling;
}

/**
 * The largest buffer (bytes) a tile's programs make for a th×tw tile run to
 * layer `upto`: the tile's image, each activation (and its texture copy, in
 * whole texture rows), and the Gram scratch of a layer's owned part.
 */
export function tileLargestBuffer(
  ctx: OpContext,
  th: number,
  tw: number,
  upto: number,
): number {
  const maxDim = ctx.device.limits.maxTextureDimension2D;
  let most = 3 * th * tw * 4;
  const dims = layerDims(th, tw);
  for (let i = 0; i <= Math.min(upto, dims.length - 1); i++) {
    const d = dims[i];
    const floats = d.c * planeStride(d.h, d.w);
    const tex = featureTextureShape(floats, maxDim);
    most = Math.max(most, 4 * floats, tex ? 16 * tex.width * tex.height : 0);
    if (SQUEEZENET[i].kind !== "pool" && d.c % 4 === 0) {
      most = Math.max(most, 4 * gramGeometry(ctx, d.c, d.h * d.w).scratch);
    }
  }
  return most;
}

/** The part of layer `i`'s output a tile owns: its rectangle, size and compact plane. */
function owned(tile: Tile, i: number, c: number) {
  const rect = tile.layers[i];
  const [rows, cols] = rectSize(rect);
  return { rect, rows, cols, c, plane: planeStride(rows, cols) };
}

/** Whether a tile owns no position of layer `i` (a deep layer in a thin last tile). */
function ownsNothing(tile: Tile, i: number): boolean {
  const [rows, cols] = rectSize(tile.layers[i]);
  return rows <= 0 || cols <= 0;
}

/** The rectangle of layer `i` a tile owns, in the whole image's layer coordinates. */
export function globalRect(tile: Tile, i: number): Rect {
  const s = layerStride(i);
  const r = tile.layers[i];
  const [dy, dx] = [tile.input.y0 / s, tile.input.x0 / s];
  return { y0: r.y0 + dy, y1: r.y1 + dy, x0: r.x0 + dx, x1: r.x1 + dx };
}

/** A layer output of a recorded forward, as crop.wgsl's planes. */
export function outputPlanes(fwd: Forward, i: number): Planes {
  const o = fwd.outputs[i];
  return { buffer: o.buffer, offset: 0, plane: o.plane, width: o.dims.w };
}

/** Appends the crop of the tile's owned part of layer `i` into a new compact transient. */
async function cropOwned(
  t: TiledContext,
  fwd: Forward,
  tile: Tile,
  i: number,
  label: string,
): Promise<{ buffer: GPUBuffer; part: ReturnType<typeof owned> }> {
  const part = owned(tile, i, fwd.outputs[i].dims.c);
  const buffer = t.scope.temp(part.c * part.plane, `${label}.owned`);
  await crop(t.ctx, t.scope, t.prog, {
    label: `${label}.crop`,
    win: { c: part.c, rows: part.rows, cols: part.cols },
    src: outputPlanes(fwd, i),
    y: part.rect.y0,
    x: part.rect.x0,
    dst: { buffer, offset: 0, plane: part.plane, width: part.cols },
  });
  return { buffer, part };
}

/**
 * The part of layer `i` a tile owns, as the loss kernels read it: in place
 * for row tiles and whole images (whole rows: from an offset, each plane's
 * `npix` pixels, planes the layer's stride apart, fetched from the layer's
 * texture copy when it has one), else cropped into a compact tensor
 * (appended to the program).
 */
export async function ownedF(
  t: TiledContext,
  grid: TileGrid,
  fwd: Forward,
  tile: Tile,
  i: number,
  label: string,
): Promise<OwnedF> {
  const out = fwd.outputs[i];
  const rect = tile.layers[i];
  const [rows, cols] = rectSize(rect);
  const npix = rows * cols;
  if (grid.cols === 1) {
    return {
      c: out.dims.c,
      rows,
      cols,
      npix,
      f: view(out.buffer, rect.y0 * out.dims.w, out.plane),
      tex: fwd.textures[i] ?? undefined,
      inPlace: true,
      label,
      // A whole image computes whole planes; a row tile its owned rows.
      extent: grid.tiles.length > 1 ? Math.ceil(npix / 4) * 4 : undefined,
    };
  }
  const { buffer, part } = await cropOwned(t, fwd, tile, i, label);
  return { c: part.c, rows, cols, npix, f: view(buffer, 0, part.plane), inPlace: false, label };
}

/** Appends the crop of a tile out of the image and its forward to layer `upto`. */
export async function tileForward(
  t: TiledContext,
  x: ImageBuffers,
  tile: Tile,
  upto: number,
  label: string,
  textured: ReadonlySet<number> = new Set(),
): Promise<{ input: GPUBuffer; fwd: Forward; h: number; w: number }> {
  const [h, w] = rectSize(tile.input);
  const input = t.scope.temp(3 * h * w, `${label}.input`);
  await cropImage(t.ctx, t.scope, t.prog, `${label}.crop`, x, tile.input, input);
  const fwd = await recordForward(
    t.ctx,
    t.scope,
    t.prog,
    t.net,
    input,
    h,
    w,
    upto,
    { textured, transient: true, pooling: t.pooling },
  );
  return { input, fwd, h, w };
}

/** A Gram over the tiles of a grid: the tile side shared by the tiles, and the tiles' sums. */
export interface TiledGram {
  layer: number;
  c: number;
  /** The reduce's geometry: its chunks are the tiles. */
  geo: GramGeometry;
  /** The tiles' sums, one chunk each (transient). */
  acc: GPUBuffer;
  /** C·P of the whole image's layer (the Gram's divisor). */
  n: number;
}

/**
 * Appends pass A for Grams at `layers`: each tile's forward to the deepest of
 * them, its owned part of each, that part's partial sums, summed into the
 * tile's chunk of the Gram's accumulator. Returns the Grams to reduce.
 */
export async function recordTiledGrams(
  t: TiledContext,
  grid: TileGrid,
  x: ImageBuffers,
  layers: number[],
  label: string,
): Promise<TiledGram[]> {
  const full = layerDims(grid.h, grid.w);
  const upto = Math.max(...layers);
  const grams = layers.map((i) => {
    const c = full[i].c;
    // The side every tile uses: the one of the largest owned part.
    const most = Math.max(
      ...grid.tiles.map((tl) => rectSize(tl.layers[i]).reduce((a, b) => a * b)),
    );
    const T = gramGeometry(t.ctx, c, most).T;
    const geo = { ...gramGeometry(t.ctx, c, most, false, T), nchunks: grid.tiles.length };
    const acc = t.scope.temp(grid.tiles.length * geo.ntiles * T * T, `${label}.${i}.acc`);
    return { layer: i, c, geo, acc, n: c * full[i].h * full[i].w };
  });
  // Row tiles read their layers in place: textures help the partial sums there.
  const textured = new Set(grid.cols === 1 ? layers : []);
  for (const tile of grid.tiles) {
    const tl = `${label}.tile${tile.index}`;
    const { fwd } = await tileForward(t, x, tile, upto, tl, textured);
    for (const g of grams) {
      if (ownsNothing(tile, g.layer)) {
        // A deep layer may have no position in a thin last tile: its sum is 0.
        const floats = g.geo.ntiles * g.geo.T * g.geo.T;
        t.prog.clear(`${tl}.${g.layer}.gram.none`, g.acc, tile.index * floats * 4, floats * 4);
        continue;
      }
      const own = await ownedF(t, grid, fwd, tile, g.layer, `${tl}.${g.layer}`);
      const geo = gramGeometry(t.ctx, g.c, own.npix, own.tex !== undefined, g.geo.T);
      const scratch = t.scope.temp(geo.scratch, `${tl}.${g.layer}.scratch`);
      await gramPartials(t.ctx, t.scope, t.prog, {
        label: `${tl}.${g.layer}.gram`,
        c: g.c,
        npix: own.npix,
        f: own.f,
        tex: own.tex,
        scratch,
        geo,
      });
      await gramCollapse(t.ctx, t.scope, t.prog, {
        label: `${tl}.${g.layer}.gram.collapse`,
        geo,
        scratch,
        acc: g.acc,
        slot: tile.index,
      });
    }
  }
  return grams;
}

/**
 * The compact content target of a tile: rows `rect` of each of the `c`
 * planes of the whole content target P [c][H][W], laid out `plane` apart.
 */
export function tileTarget(
  p: Float32Array,
  full: { h: number; w: number },
  t: { rect: Rect; c: number; plane: number },
): Float32Array<ArrayBuffer> {
  const [rows, cols] = rectSize(t.rect);
  const out = new Float32Array(t.c * t.plane);
  for (let c = 0; c < t.c; c++) {
    for (let y = 0; y < rows; y++) {
      const from = c * full.h * full.w + (t.rect.y0 + y) * full.w + t.rect.x0;
      out.set(p.subarray(from, from + cols), c * t.plane + y * cols);
    }
  }
  return out;
}

/**
 * Appends, for features at `taps`, each tile's forward and the crop of its
 * owned part of each tap into a buffer of its own (held for reading back);
 * returns them by tap and tile.
 */
export async function recordTiledFeatures(
  t: TiledContext,
  grid: TileGrid,
  x: ImageBuffers,
  layers: number[],
): Promise<{ layer: number; tile: Tile; buffer: GPUBuffer; rows: number; cols: number }[]> {
  const upto = Math.max(...layers);
  const out = [];
  for (const tile of grid.tiles) {
    const tl = `features.tile${tile.index}`;
    const { fwd } = await tileForward(t, x, tile, upto, tl);
    for (const i of layers) {
      if (ownsNothing(tile, i)) continue;
      const part = owned(tile, i, fwd.outputs[i].dims.c);
      const buffer = t.scope.floats(part.c * part.rows * part.cols, `${tl}.${i}.out`);
      await crop(t.ctx, t.scope, t.prog, {
        label: `${tl}.${i}.crop`,
        win: { c: part.c, rows: part.rows, cols: part.cols },
        src: outputPlanes(fwd, i),
        y: part.rect.y0,
        x: part.rect.x0,
        dst: { buffer, offset: 0, plane: part.rows * part.cols, width: part.cols },
      });
      out.push({ layer: i, tile, buffer, rows: part.rows, cols: part.cols });
    }
  }
  return out;
}
