/**
 * What the style terms share: matching the Gram matrix of one layer's
 * features (optionally weighted pixel by pixel) to a target,
 * w·Σ(G − A)², and sending dF = weights ⊙ (dG·F) back, on a whole image or
 * over tiles. Whole, a match is one Gram launch pair with its loss
 * (src/engine/ops/gram.ts `gram`) recorded just before the backward reaches
 * its layer; over tiles, each tile's partial sums are collapsed into a chunk
 * of an accumulator and one reduce forms the loss. The terms
 * (src/engine/loss/style.ts, guided_style.ts) say which matches there are.
 * @module
 */
import {
  gram,
  GRAM_LOSS_PARTS,
  gramBackward,
  gramCollapse,
  type GramGeometry,
  gramGeometry,
  gramPartials,
  gramReduce,
} from "../ops/gram.ts";
import { type View, view } from "../ops/context.ts";
import { rectSize, type TileGrid } from "../model/tiles.ts";
import type { FusedStyle } from "../model/squeezenet.ts";
import type { LayerGrad, LossTerm, Recorder, TileView } from "./term.ts";

/** One Gram matched to a target at one layer. */
export interface GramMatch {
  /** Network index of the layer. */
  layer: number;
  /** Launch labels start with it ("conv1.style"). */
  label: string;
  /** Channels of the layer. */
  c: number;
  /** The loss weight w. */
  weight: number;
  /** The divisor N of G (C·P of the whole layer, or C for a weighted Gram). */
  n: number;
  /** The target A [C][C] (written with the spec). */
  target: GPUBuffer;
  /** dG = (4w/N)·(G − A), for the backward. */
  dgram: GPUBuffer;
  /** Per tile: the weights of its owned pixels (null for a plain Gram). */
  weights: (GPUBuffer | null)[];
  /** Where its loss partials go (set when the plan binds the segments). */
  parts?: View;
  /** Over tiles: each tile's sums, one chunk each, and their tiling. */
  acc?: GPUBuffer;
  geo?: GramGeometry;
}

/** The loss partials one match writes. */
export const MATCH_PARTS = GRAM_LOSS_PARTS;

/** A new match's buffers: target and dG (weights and parts are the term's to give). */
export function newMatch(
  r: Recorder,
  o: { layer: number; label: string; c: number; weight: number; n: number; tiles: number },
): GramMatch {
  return {
    ...o,
    target: r.scope.floats(o.c * o.c, `${o.label}.gram.target`),
    dgram: r.scope.weights(o.c * o.c, `${o.label}.dgram`, true),
    weights: Array(o.tiles).fill(null),
  };
}

/** The weights of match `m` for tile `v`, as a view (undefined for a plain Gram). */
function weightsOf(m: GramMatch, v: TileView): View | undefined {
  const w = m.weights[v.tile.index];
  return w ? view(w) : undefined;
}

/**
 * Records the tile's share of the matches at layer `i`: whole, each Gram
 * with its loss and dG; over tiles, each tile's partial sums into its chunk
 * of the match's accumulator (made on the first tile).
 */
export async function accumulateMatches(
  r: Recorder,
  v: TileView,
  i: number,
  matches: GramMatch[],
): Promise<void> {
  const here = matches.filter((m) => m.layer === i);
  if (here.length === 0) return;
  if (v.whole) {
    for (const m of here) await wholeGram(r, v, m);
    return;
  }
  for (const m of here) {
    const { acc, geo } = m.acc ? { acc: m.acc, geo: m.geo! } : accumulator(r, v.grid, m);
    [m.acc, m.geo] = [acc, geo];
    const tl = `tile${v.tile.index}.${m.label}`;
    if (v.ownsNothing(i)) {
      // A deep layer may have no position in a thin last tile: its sum is 0.
      const floats = geo.ntiles * geo.T * geo.T;
      r.prog.clear(`${tl}.gram.none`, acc, v.tile.index * floats * 4, floats * 4);
      continue;
    }
    const own = await v.owned(i);
    const tileGeo = gramGeometry(r.ctx, m.c, own.npix, own.tex !== undefined, geo.T);
    const scratch = r.scope.temp(tileGeo.scratch, `${tl}.scratch`);
    await gramPartials(r.ctx, r.scope, r.prog, {
      label: `${tl}.gram`,
      c: m.c,
      npix: own.npix,
      f: own.f,
      tex: own.tex,
      weight: weightsOf(m, v),
      scratch,
      geo: tileGeo,
    });
    await gramCollapse(r.ctx, r.scope, r.prog, {
      label: `${tl}.gram.collapse`,
      geo: tileGeo,
      scratch,
      acc,
      slot: v.tile.index,
    });
  }
}

/** A whole image's Gram of match `m` with its loss and dG. */
async function wholeGram(r: Recorder, v: TileView, m: GramMatch): Promise<void> {
  const own = await v.owned(m.layer);
  const tex = own.tex;
  await gram(r.ctx, r.scope, r.prog, {
    label: `${m.label}.gram`,
    c: m.c,
    npix: own.npix,
    f: own.f,
    tex,
    weight: weightsOf(m, v),
    n: m.n,
    scratch: r.scope.temp(
      gramGeometry(r.ctx, m.c, own.npix, tex !== undefined).scratch,
      `${m.label}.scratch`,
    ),
    loss: { target: m.target, weight: m.weight, dgram: m.dgram, parts: m.parts! },
  });
}

/**
 * A match's accumulator over the tiles of `grid`: one chunk per tile, with
 * the tile side every tile uses (the one of the largest owned part).
 */
function accumulator(r: Recorder, grid: TileGrid, m: GramMatch) {
  const most = Math.max(
    ...grid.tiles.map((t) => rectSize(t.layers[m.layer]).reduce((a, b) => a * b)),
  );
  const T = gramGeometry(r.ctx, m.c, most).T;
  const geo = { ...gramGeometry(r.ctx, m.c, most, false, T), nchunks: grid.tiles.length };
  const acc = r.scope.temp(grid.tiles.length * geo.ntiles * T * T, `${m.label}.acc`);
  return { acc, geo };
}

/** Over tiles: the reduce of the matches at layer `i` into their losses and dG. */
export async function reduceMatches(r: Recorder, i: number, matches: GramMatch[]): Promise<void> {
  for (const m of matches.filter((m) => m.layer === i && m.acc)) {
    await gramReduce(r.ctx, r.scope, r.prog, {
      label: `${m.label}.gram`,
      c: m.c,
      n: m.n,
      geo: m.geo!,
      scratch: m.acc!,
      loss: { target: m.target, weight: m.weight, dgram: m.dgram, parts: m.parts! },
    });
  }
}

/** The backward of the one plain match at a layer, fused into the 1×1 launch writing its gradient. */
export async function fusedMatch(v: TileView, m: GramMatch): Promise<FusedStyle> {
  const own = await v.owned(m.layer);
  return { f: own.f, dgram: m.dgram, c: m.c, tex: own.tex };
}

/**
 * Records dF += weights ⊙ (dG·F) of each match at layer `i` into `g.grad`
 * (the first overwriting a fresh gradient, the last applying the ReLU
 * backward when it may); returns whether it did.
 */
export async function injectMatches(
  r: Recorder,
  v: TileView,
  i: number,
  g: LayerGrad,
  matches: GramMatch[],
): Promise<boolean> {
  const here = matches.filter((m) => m.layer === i);
  const own = g.own;
  for (const [j, m] of here.entries()) {
    const last = j === here.length - 1;
    await gramBackward(r.ctx, r.scope, r.prog, {
      label: v.whole ? `${m.label}.gram.back` : `tile${v.tile.index}.${m.label}.gram.back`,
      c: own.c,
      h: own.rows,
      w: own.cols,
      f: own.f,
      dgram: m.dgram,
      grad: g.grad,
      accumulate: !(g.fresh && j === 0),
      maskOut: last && g.relu ? g.relu : undefined,
      scale: weightsOf(m, v),
      tex: own.tex,
      extent: own.extent,
    });
  }
  return here.length > 0 && g.relu !== null;
}

/**
 * A style term over `matches` (one per segment, null where a weight is 0):
 * their Grams accumulated and reduced, their backward injected; `segments`
 * say what each match's partial sums are, `write` uploads the targets.
 */
export function matchTerm<S>(
  r: Recorder,
  matches: (GramMatch | null)[],
  o: {
    what: (j: number) => string;
    write: (queue: GPUQueue, spec: S) => void;
    fusePointwise?: LossTerm<S>["fusePointwise"];
  },
): LossTerm<S> | null {
  const active = matches.filter((m): m is GramMatch => m !== null);
  if (active.length === 0) return null;
  return {
    layers: active.map((m) => m.layer),
    textured: active.map((m) => m.layer),
    overwrites: true,
    segments: matches.map((m, j) => ({
      kind: "style",
      weight: { name: "the style weights", setting: "style-weights" },
      what: o.what(j),
      capacity: m ? MATCH_PARTS : 0,
    })),
    bind(parts) {
      matches.forEach((m, j) => {
        if (m) m.parts = parts[j];
      });
    },
    accumulate: (v, i) => accumulateMatches(r, v, i, active),
    reduce: (i) => reduceMatches(r, i, active),
    fusePointwise: o.fusePointwise,
    inject: (v, i, g) => injectMatches(r, v, i, g, active),
    write: o.write,
  };
}
