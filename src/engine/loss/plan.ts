/**
 * The loss-and-gradient program of one spec at one image size, whole or over
 * the tiles of a grid (src/engine/model/tiles.ts) — one builder for both: a
 * whole image is a grid of one tile owning everything. It allocates the
 * image, its gradient and the loss partials, asks the spec's terms
 * (src/engine/loss/mod.ts) what they need, and records:
 *
 * - over several tiles, pass A: each tile's forward to the deepest layer a
 *   whole-image statistic needs (a Gram) and each term's share of it, then
 *   the terms' reduces;
 * - per tile: its forward (whole: the only one), the network's backward with
 *   the terms' gradients added at their layers (whole: their statistics
 *   recorded just before the backward reaches each layer, and their fused
 *   forms offered to the launches that write the gradients), the image terms,
 *   and (tiles) the tile's gradient added into the image's.
 * @module
 */
import { Program } from "../gpu/scheduler.ts";
import { cropBackward } from "../ops/crop.ts";
import { view } from "../ops/context.ts";
import { addTileToImage, type ImageBuffers, imageBuffers } from "../model/image_buffers.ts";
import {
  type BackwardLosses,
  type Forward,
  recordBackward,
  recordForward,
  SQUEEZENET,
} from "../model/squeezenet.ts";
import { outputPlanes, ownedF, tileForward } from "../model/tiled_plan.ts";
import { rectSize, type TileGrid } from "../model/tiles.ts";
import { createTerms, type LossSpec } from "./mod.ts";
import type {
  LayerGrad,
  LossTerm,
  OwnedF,
  PointwiseFusion,
  Recorder,
  Segment,
  TileView,
} from "./term.ts";

import type { Plan } from "../model/plans.ts";

/** A loss-and-gradient plan: the forward, losses and backward of one spec at one size. */
export interface LossPlan extends Plan {
  h: number;
  w: number;
  /** How many tiles the image is split into (1: the whole image at once). */
  tiles: number;
  /** Image x [3][H][W] (input of the forward), in bands of rows. */
  x: ImageBuffers;
  /** d loss / d x, banded as x. */
  grad: ImageBuffers;
  /** The terms' loss partial sums, summed on the CPU when read ({@link lossTerms}). */
  parts: GPUBuffer;
  segments: Segment[];
  /** Floats of `parts` the segments span, and the flag after them. */
  partsFloats: number;
  /**
   * Index in `parts` of a u32 flag (after the segments) the Adam step sets to
   * 1 when the gradient it reads is not finite.
   */
  flagIndex: number;
  /** Uploads a spec's targets (content features, Grams, masks) into the plan. */
  writeTargets(spec: LossSpec): void;
}

type Term = LossTerm<LossSpec>;

/** Gives each term views of the partials it asked for; returns the buffer and segments. */
function allocateParts(r: Recorder, terms: Term[]) {
  let at = 0;
  const segments: Segment[] = [];
  const starts = terms.map((t) =>
    t.segments.map((s) => {
      segments.push({ start: at, count: s.capacity, kind: s.kind, what: s.what, weight: s.weight });
      at += s.capacity;
      return [at - s.capacity, segments.length - 1] as const;
    })
  );
  const parts = r.scope.floats(at + 1, "loss.parts");
  terms.forEach((t, k) =>
    t.bind(
      starts[k].map(([start]) => view(parts, start)),
      starts[k].map(([, s]) => segments[s]),
    )
  );
  return { parts, segments, flagIndex: at };
}

/** The layers a set of terms read, and those whose outputs they want in textures. */
function layersOf(terms: Term[], pick: (t: Term) => boolean = () => true) {
  const chosen = terms.filter(pick);
  return {
    upto: Math.max(0, ...chosen.flatMap((t) => t.layers)),
    textured: new Set(chosen.flatMap((t) => t.textured)),
  };
}

/** A tile's image and forward. */
interface TileForward {
  input: GPUBuffer;
  fwd: Forward;
  h: number;
  w: number;
}

/** The forward of a whole image, on the image's buffer itself. */
async function wholeForward(
  r: Recorder,
  x: ImageBuffers,
  upto: number,
  textured: ReadonlySet<number>,
): Promise<TileForward> {
  const input = x.bands[0].buffer;
  const { ctx, scope, prog, net, pooling } = r;
  const fwd = await recordForward(ctx, scope, prog, net, input, x.h, x.w, upto, {
    textured,
    transient: true,
    pooling,
  });
  return { input, fwd, h: x.h, w: x.w };
}

/** A tile's view: its forward and its owned parts, cropped once per layer where not in place. */
function tileView(
  r: Recorder,
  grid: TileGrid,
  index: number,
  f: TileForward,
  label: string,
): TileView {
  const tile = grid.tiles[index];
  const whole = grid.tiles.length === 1;
  const crops = new Map<number, Promise<OwnedF>>();
  return {
    grid,
    tile,
    whole,
    ...f,
    ownsNothing: (i) => rectSize(tile.layers[i]).some((n) => n <= 0),
    owned(i) {
      let o = crops.get(i);
      if (!o) {
        o = ownedF(r, grid, f.fwd, tile, i, `${label}.${SQUEEZENET[i].name}`);
        crops.set(i, o);
      }
      return o;
    },
  };
}

/**
 * The hooks of the network's backward for one tile: at each layer the terms
 * with a gradient there, fused (whole) or added into the owned part.
 * `ready(i)` records the whole image's statistics at layer `i` first.
 */
function backwardHooks(
  r: Recorder,
  v: TileView,
  terms: Term[],
  ready: (i: number) => Promise<void>,
): BackwardLosses {
  // Terms that can overwrite a fresh gradient first (no clear needed).
  const at = (i: number) =>
    terms.filter((t) => t.inject && t.layers.includes(i))
      .sort((a, b) => Number(b.overwrites) - Number(a.overwrites));
  const fused = new Set<string>();
  const isFused = (t: Term, i: number) => fused.has(`${terms.indexOf(t)}@${i}`);
  return {
    hasLoss: (i) => at(i).length > 0,
    overwrites: (i) => v.whole && at(i)[0]?.overwrites === true,
    async fusePointwise(i): Promise<PointwiseFusion | null> {
      const here = at(i);
      if (!v.whole || here.length !== 1 || !here[0].fusePointwise) return null;
      await ready(i);
      const f = await here[0].fusePointwise(v, i);
      if (f) fused.add(`${terms.indexOf(here[0])}@${i}`);
      return f;
    },
    async inject(i, layerGrad, relu, fresh) {
      const here = at(i).filter((t) => !isFused(t, i));
      if (here.length === 0 || v.ownsNothing(i)) return false;
      await ready(i);
      const own = await v.owned(i);
      const plane = own.f.plane!;
      // In place, the owned part's gradient is a slice of the layer's (added
      // into); else a compact one, added back after.
      const grad = own.inPlace
        ? view(layerGrad, own.f.offset, plane)
        : view(r.scope.temp(own.c * plane, `${own.label}.owned.grad`), 0, plane);
      let first = own.inPlace ? fresh : true;
      if (first && !here[0].overwrites) {
        if (!own.inPlace) r.prog.clear(`${own.label}.owned.grad.clear`, grad.buffer);
        first = false;
      }
      let masked = false;
      for (const [k, t] of here.entries()) {
        const last = k === here.length - 1;
        const g: LayerGrad = {
          own,
          grad,
          fresh: first && k === 0,
          relu: last && v.whole ? relu : null,
        };
        masked = await t.inject!(v, i, g);
      }
      if (!own.inPlace) {
        await cropBackward(r.ctx, r.scope, r.prog, {
          label: `${own.label}.owned.back`,
          win: { c: own.c, rows: own.rows, cols: own.cols },
          grad: { buffer: grad.buffer, offset: 0, plane, width: own.cols },
          into: { ...outputPlanes(v.fwd, i), buffer: layerGrad },
          y: v.tile.layers[i].y0,
          x: v.tile.layers[i].x0,
        });
      }
      return masked;
    },
    fuseImage() {
      if (!v.whole) return null;
      for (const t of terms) {
        const f = t.fuseImage?.(v);
        if (f) {
          fused.add(`${terms.indexOf(t)}@image`);
          return f;
        }
      }
      return null;
    },
    imageFused: (t: Term) => fused.has(`${terms.indexOf(t)}@image`),
  } as BackwardLosses & { imageFused(t: Term): boolean };
}

/**
 * Records the loss, its terms' partial sums and d loss / d x of `spec` on an
 * image split by `grid` (one tile: whole) into a new program.
 */
export async function recordLossPlan(
  r0: Omit<Recorder, "prog">,
  grid: TileGrid,
  spec: LossSpec,
): Promise<Omit<LossPlan, "scope">> {
  const prog = new Program(r0.ctx.device);
  const r: Recorder = { ...r0, prog };
  const { scope } = r;
  const [h, w] = [grid.h, grid.w];
  const whole = grid.tiles.length === 1;
  const terms = createTerms(r, grid, spec);
  const { parts, segments, flagIndex } = allocateParts(r, terms);
  const x = imageBuffers(scope, h, w, "x");
  const grad = imageBuffers(scope, h, w, "x.grad");
  const global = terms.filter((t) => t.accumulate);
  const done = new Set<number>();
  const reduceAll = async (i: number) => {
    for (const t of global) if (t.layers.includes(i)) await t.reduce?.(i);
  };
  if (!whole) {
    for (const b of grad.bands) prog.clear(`grad.clear`, b.buffer);
    // Pass A: the whole image's statistics over all the tiles, then reduced.
    if (global.length > 0) {
      const a = layersOf(terms, (t) => t.accumulate !== undefined);
      const layers = [...new Set(global.flatMap((t) => t.layers))].sort((p, q) => p - q);
      for (const tile of grid.tiles) {
        const label = `stats.tile${tile.index}`;
        const textured = grid.cols === 1 ? a.textured : new Set<number>();
        const f = await tileForward(r, x, tile, a.upto, label, textured);
        const v = tileView(r, grid, tile.index, f, label);
        for (const i of layers) for (const t of global) await t.accumulate!(v, i);
      }
      for (const i of layers) await reduceAll(i);
      for (const i of layers) done.add(i);
    }
  }
  // Pass B: each tile's forward, its backward with the terms, its image terms.
  const b = layersOf(terms);
  for (const tile of grid.tiles) {
    const label = whole ? "" : `tile${tile.index}`;
    const textured = whole || grid.cols === 1 ? b.textured : new Set<number>();
    const f = whole
      ? await wholeForward(r, x, b.upto, textured)
      : await tileForward(r, x, tile, b.upto, label, textured);
    const v = tileView(r, grid, tile.index, f, label);
    const tileGrad = whole ? grad.bands[0].buffer : scope.temp(3 * f.h * f.w, `${label}.grad`);
    // Whole: each layer's statistics just before the backward reaches it.
    const ready = async (i: number) => {
      if (done.has(i)) return;
      done.add(i);
      for (const t of global) if (t.layers.includes(i)) await t.accumulate!(v, i);
      await reduceAll(i);
    };
    const hooks = backwardHooks(r, v, terms, ready) as ReturnType<typeof backwardHooks> & {
      imageFused(t: Term): boolean;
    };
    await recordBackward(r.ctx, scope, prog, r.net, f.fwd, tileGrad, hooks);
    for (const t of terms) {
      if (t.injectImage && !hooks.imageFused(t)) await t.injectImage(v, view(tileGrad));
    }
    if (!whole) {
      await addTileToImage(r.ctx, scope, prog, `${label}.grad.add`, tileGrad, tile.input, grad);
    }
  }
  // Pixel-wise terms, on the whole image once its gradient is in.
  for (const t of terms) await t.injectBands?.(x, grad);
  return {
    prog,
    h,
    w,
    tiles: grid.tiles.length,
    x,
    grad,
    parts,
    segments,
    partsFloats: flagIndex + 1,
    flagIndex,
    writeTargets: (s: LossSpec) => {
      for (const t of terms) t.write(r.ctx.device.queue, s);
    },
  };
}
