/**
 * The programs of an image split into tiles (src/engine/model/tiles.ts), for
 * images whose activations do not fit the buffer limit whole: the loss and
 * its gradient, the Gram matrices of a style image, and features. Each tile
 * is cropped out of the image-sized buffers, its network recorded with
 * transient activations (the memory plan gives every tile the same memory),
 * and its owned part of each loss layer cropped into a compact tensor on
 * which the kernels of the whole-image path run unchanged: the Gram partial
 * sums (summed per tile, then over the tiles by the reduce), the content
 * term, and their backward, added back into the layer's gradient. Two passes:
 * the tiles' forwards for the Gram matrices, then each tile's forward again
 * and its backward, whose image gradient is added into the image's.
 * @module
 */
import type { Program } from "../gpu/scheduler.ts";
import { crop, cropBackward, type Planes } from "../ops/crop.ts";
import {
  type FeatureTexture,
  featureTextureShape,
  type OpContext,
  planeStride,
  type Scope,
  type View,
  view,
} from "../ops/context.ts";
import {
  GRAM_LOSS_PARTS,
  gramBackward,
  gramCollapse,
  type GramGeometry,
  gramGeometry,
  gramPartials,
  gramReduce,
} from "../ops/gram.ts";
import { contentLoss, LOSS_PARTS, tvLoss } from "../ops/loss.ts";
import type { Pooling } from "../ops/pool.ts";
import { addTileToImage, cropImage, type ImageBuffers } from "./image_buffers.ts";
import {
  type Forward,
  layerDims,
  type NetWeights,
  recordBackward,
  recordForward,
  SQUEEZENET,
  tapLayerIndex,
  type TapName,
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
function outputPlanes(fwd: Forward, i: number): Planes {
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
 * A tile's owned part of layer `i` as the loss kernels read it: in place
 * for row tiles (whole rows: from an offset, each plane's `npix` pixels,
 * planes the layer's stride apart, fetched from the layer's texture copy
 * when it has one), else cropped into a compact tensor.
 */
interface OwnedF {
  c: number;
  rows: number;
  cols: number;
  npix: number;
  /** F's owned part: offset and plane stride. */
  f: View;
  tex?: FeatureTexture;
  /** Whether `f` is the layer's output itself (row tiles) or a compact copy. */
  inPlace: boolean;
}

/** The owned part of layer `i` of a tile ({@link OwnedF}); appends its crop when not in place. */
async function ownedF(
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
    };
  }
  const { buffer, part } = await cropOwned(t, fwd, tile, i, label);
  return { c: part.c, rows, cols, npix, f: view(buffer, 0, part.plane), inPlace: false };
}

/** Appends the crop of a tile out of the image and its forward to layer `upto`. */
async function tileForward(
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

/** The losses of a tiled loss plan, with their weights (the targets are written later). */
export interface TiledLossSpec {
  contentLayer: TapName;
  contentWeight: number;
  styleLayers: TapName[];
  styleWeights: number[];
  tvWeight: number;
}

/** What {@link recordTiledLoss} recorded and the buffers its targets go into. */
export interface TiledLoss {
  /** Loss partial sums: content (per tile), style (per layer), TV (per tile); then the flag. */
  parts: GPUBuffer;
  segments: [number, number][];
  partsFloats: number;
  flagIndex: number;
  /** Per tile: its compact content target (null without a content term) and owned rectangle. */
  contentTargets: ({ buffer: GPUBuffer; rect: Rect; c: number; plane: number } | null)[];
  /** Per style layer: its target Gram [C][C]. */
  styleTargets: GPUBuffer[];
}

/**
 * Appends the loss, its terms' partial sums and d loss / d x (written into
 * `grad`, cleared first) for image `x` split by `grid`.
 */
export async function recordTiledLoss(
  t: TiledContext,
  grid: TileGrid,
  x: ImageBuffers,
  grad: ImageBuffers,
  spec: TiledLossSpec,
): Promise<TiledLoss> {
  const { ctx, scope, prog } = t;
  const n = grid.tiles.length;
  const full = layerDims(grid.h, grid.w);
  const cIdx = tapLayerIndex(spec.contentLayer);
  const hasContent = spec.contentWeight > 0;
  const styles = spec.styleLayers.map((l, k) => ({ k, layer: tapLayerIndex(l) }))
    .filter(({ k }) => spec.styleWeights[k] > 0);
  // Partial sums: content per tile, each style layer, TV per tile; then the flag.
  const segments: [number, number][] = [];
  let at = 0;
  const seg = (count: number) => {
    segments.push([at, count]);
    at += count;
    return at - count;
  };
  const contentAt = seg(hasContent ? LOSS_PARTS * n : 0);
  const styleAt = spec.styleLayers.map((_, k) =>
    seg(spec.styleWeights[k] > 0 ? GRAM_LOSS_PARTS : 0)
  );
  const tvAt = seg(spec.tvWeight > 0 ? LOSS_PARTS * n : 0);
  const flagIndex = at;
  const parts = scope.floats(at + 1, "loss.parts");
  const styleTargets = spec.styleLayers.map((l) => {
    const c = full[tapLayerIndex(l)].c;
    return scope.floats(c * c, `${l}.gram.target`);
  });
  const contentTargets = grid.tiles.map((tile) => {
    if (!hasContent || ownsNothing(tile, cIdx)) return null;
    const part = owned(tile, cIdx, full[cIdx].c);
    // Row tiles read F in place: P is laid out with the tile layer's planes.
    const [th, tw] = rectSize(tile.input);
    const d = layerDims(th, tw)[cIdx];
    const plane = grid.cols === 1 ? planeStride(d.h, d.w) : part.plane;
    return {
      buffer: scope.floats(part.c * plane, `content.target.tile${tile.index}`),
      rect: globalRect(tile, cIdx),
      c: part.c,
      plane,
    };
  });
  for (const b of grad.bands) prog.clear(`grad.clear`, b.buffer);
  // Pass A: the Grams over all the tiles, then their losses and dG.
  const dgrams = new Map<number, GPUBuffer>();
  if (styles.length > 0) {
    const grams = await recordTiledGrams(t, grid, x, styles.map((s) => s.layer), "style");
    for (const [j, { k }] of styles.entries()) {
      const g = grams[j];
      const dgram = scope.weights(g.c * g.c, `${spec.styleLayers[k]}.style.dgram`, true);
      await gramReduce(ctx, scope, prog, {
        label: `${spec.styleLayers[k]}.style.gram`,
        c: g.c,
        n: g.n,
        geo: g.geo,
        scratch: g.acc,
        loss: {
          target: styleTargets[k],
          weight: spec.styleWeights[k],
          dgram,
          parts: view(parts, styleAt[k]),
        },
      });
      dgrams.set(k, dgram);
    }
  }
  // Pass B: each tile's forward again, its owned losses' gradients, its backward.
  const upto = Math.max(
    ...(hasContent ? [cIdx] : []),
    ...styles.map((s) => s.layer),
    0,
  );
  const textured = new Set(
    grid.cols === 1 ? [...styles.map((s) => s.layer), ...(hasContent ? [cIdx] : [])] : [],
  );
  for (const tile of grid.tiles) {
    const tl = `tile${tile.index}`;
    const { input, fwd, h, w } = await tileForward(t, x, tile, upto, tl, textured);
    const tileGrad = scope.temp(3 * h * w, `${tl}.grad`);
    const target = contentTargets[tile.index];
    await recordBackward(ctx, scope, prog, t.net, fwd, tileGrad, {
      hasLoss: (i) => (hasContent && i === cIdx) || styles.some((s) => s.layer === i),
      overwrites: () => false,
      inject: async (i, layerGrad) => {
        const here = styles.filter((s) => s.layer === i);
        const content = hasContent && i === cIdx;
        if ((!content && here.length === 0) || ownsNothing(tile, i)) return false;
        const label = `${tl}.${SQUEEZENET[i].name}`;
        const own = await ownedF(t, grid, fwd, tile, i, label);
        const plane = own.f.plane!;
        // In place, the owned rows' gradient is the layer gradient's slice
        // (added into); else a compact one, added back after.
        const dF = own.inPlace
          ? view(layerGrad, own.f.offset, plane)
          : view(scope.temp(own.c * plane, `${label}.owned.grad`), 0, plane);
        for (const [j, s] of here.entries()) {
          await gramBackward(ctx, scope, prog, {
            label: `${label}.style.gram.back`,
            c: own.c,
            h: own.rows,
            w: own.cols,
            f: own.f,
            dgram: dgrams.get(s.k)!,
            grad: dF,
            accumulate: own.inPlace || j > 0,
            tex: own.tex,
            extent: own.inPlace ? Math.ceil(own.npix / 4) * 4 : undefined,
          });
        }
        if (content) {
          if (here.length === 0 && !own.inPlace) {
            prog.clear(`${label}.owned.grad.clear`, dF.buffer);
          }
          await contentLoss(ctx, scope, prog, {
            label: `${label}.content`,
            c: own.c,
            h: own.rows,
            w: own.cols,
            f: own.f,
            target: target!.buffer,
            weight: spec.contentWeight,
            grad: dF,
            parts: view(parts, contentAt + LOSS_PARTS * tile.index),
            // In place, F's last plane ends where its buffer does.
            lastPlaneShort: own.f.offset,
          });
        }
        if (!own.inPlace) {
          await cropBackward(ctx, scope, prog, {
            label: `${label}.owned.back`,
            win: { c: own.c, rows: own.rows, cols: own.cols },
            grad: { buffer: dF.buffer, offset: 0, plane, width: own.cols },
            into: { ...outputPlanes(fwd, i), buffer: layerGrad },
            y: tile.layers[i].y0,
            x: tile.layers[i].x0,
          });
        }
        return false;
      },
    });
    if (spec.tvWeight > 0) {
      const o = tile.owned;
      const i0 = tile.input;
      await tvLoss(ctx, scope, prog, {
        label: `${tl}.tv`,
        c: 3,
        h,
        w,
        x: view(input),
        grad: view(tileGrad),
        rect: { y0: o.y0 - i0.y0, y1: o.y1 - i0.y0, x0: o.x0 - i0.x0, x1: o.x1 - i0.x0 },
        weight: spec.tvWeight,
        parts: view(parts, tvAt + LOSS_PARTS * tile.index),
      });
    }
    await addTileToImage(ctx, scope, prog, `${tl}.grad.add`, tileGrad, tile.input, grad);
  }
  return { parts, segments, partsFloats: at + 1, flagIndex, contentTargets, styleTargets };
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
