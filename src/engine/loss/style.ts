/**
 * The style term (Gatys et al. 2015): Σ_l w_l·Σ(G_l − A_l)² over the style
 * layers (reference.py's `style_loss`), G_l = F·Fᵀ/(C·H·W) the Gram matrix of
 * the image's features at layer l, A_l the style's (blended) Gram there. The
 * Gram's partial sums over pixel chunks and their reduce, with the loss and
 * dG = (4w/N)·(G − A), run before the backward reaches the layer; dF = dG·F
 * goes into the layer's gradient, riding on the 1×1 launch that writes it
 * when the term is alone at its layer of a whole image (src/engine/loss/
 * gram_match.ts). Over tiles, each tile sums its owned positions and one
 * reduce adds the tiles. Memory: A and dG per layer (C² each), the partial
 * sums (transient). Tested against the reference's goldens by
 * tests/backward_test.ts and tests/gram_test.ts, whole against tiles by
 * tests/tiles_test.ts.
 * @module
 */
import { UserError } from "../errors.ts";
import type { Dims } from "../model/squeezenet.ts";
import { layerDims, tapLayerIndex, type TapName } from "../model/squeezenet.ts";
import type { Tensor } from "../image/types.ts";
import type { TileGrid } from "../model/tiles.ts";
import { fusedMatch, type GramMatch, matchTerm, newMatch } from "./gram_match.ts";
import type { LossTerm, Recorder } from "./term.ts";

/** The style layers and their weights, shared by the plain and the guided style terms. */
export interface StyleLayersSpec {
  styleLayers: TapName[];
  styleWeights: number[];
}

/** The plain style term's part of a loss spec. */
export interface StyleSpec extends StyleLayersSpec {
  /** Target Grams [C, C], one per style layer (absent with `regions`, the guided term). */
  styleTargets?: Tensor[];
}

/**
 * Checks that layers and weights pair up and the weights are ≥ 0; returns
 * the layers with a weight.
 */
export function checkStyleLayers(spec: StyleLayersSpec): number[] {
  const n = spec.styleLayers.length;
  if (spec.styleWeights.length !== n) {
    throw new UserError(
      `${n} style layers need ${n} style weights, got ${spec.styleWeights.length}`,
    );
  }
  for (const v of spec.styleWeights) {
    if (!Number.isFinite(v) || v < 0) throw new UserError(`loss weights must be ≥ 0, got ${v}`);
  }
  return spec.styleLayers.flatMap((l, k) => spec.styleWeights[k] > 0 ? [tapLayerIndex(l)] : []);
}

/** Checks one Gram target per style layer, each [C, C] for its layer's C. */
export function checkGramTargets(
  layers: TapName[],
  targets: Tensor[],
  dims: Dims[],
  what = "style target",
): void {
  if (targets.length !== layers.length) {
    throw new UserError(
      `${layers.length} style layers need ${layers.length} ${what}s, got ${targets.length}`,
    );
  }
  layers.forEach((l, k) => {
    const c = dims[tapLayerIndex(l)].c;
    if (targets[k].data.length !== c * c) {
      throw new UserError(`${what} for ${l} must be [${c},${c}], got [${targets[k].shape}]`);
    }
  });
}

/** Validates the plain style part of a spec; returns the layers it reads. */
export function checkStyle(spec: StyleSpec, dims: Dims[]): number[] {
  const layers = checkStyleLayers(spec);
  if (!spec.styleTargets) return [];
  checkGramTargets(spec.styleLayers, spec.styleTargets, dims);
  return layers;
}

/** What of the plain style spec the recorded program depends on. */
export function styleKey(spec: StyleSpec): unknown {
  return spec.styleTargets ? [spec.styleLayers, spec.styleWeights] : null;
}

/** The plain style term of a plan; null without style targets or weights. */
export function createStyle(
  r: Recorder,
  grid: TileGrid,
  spec: StyleSpec,
): LossTerm<StyleSpec> | null {
  if (!spec.styleTargets) return null;
  const full = layerDims(grid.h, grid.w);
  const matches: (GramMatch | null)[] = spec.styleLayers.map((l, k) => {
    if (!(spec.styleWeights[k] > 0)) return null;
    const i = tapLayerIndex(l);
    const d = full[i];
    return newMatch(r, {
      layer: i,
      label: `${l}.style`,
      c: d.c,
      weight: spec.styleWeights[k],
      n: d.c * d.h * d.w,
      tiles: grid.tiles.length,
    });
  });
  const active = matches.filter((m): m is GramMatch => m !== null);
  return matchTerm(r, matches, {
    what: (k) => `the style loss at ${spec.styleLayers[k]}`,
    async fusePointwise(v, i) {
      const here = active.filter((m) => m.layer === i);
      return here.length === 1 ? { style: await fusedMatch(v, here[0]) } : null;
    },
    write(queue, s) {
      matches.forEach((m, k) => {
        if (m) queue.writeBuffer(m.target, 0, new Float32Array(s.styleTargets![k].data));
      });
    },
  });
}
