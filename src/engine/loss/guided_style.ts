/**
 * The guided style term (spatial control, Gatys et al. 2017; reference.py's
 * `style_loss_masked`): each style r matched inside its own region, given by a
 * mask m_r over the image, Σ_l w_l Σ_r ‖G(F_l, m_r,l) − A_r,l‖², where m_r,l
 * is the mask carried down to layer l (src/engine/loss/guide.ts), the guided
 * Gram G(F, m) = (F·m)(F·m)ᵀ / (C·Σm²), and A_r,l the plain Gram of style r.
 * A region whose mask vanishes at a layer adds nothing there; one mask of
 * ones is the plain style term.
 *
 * On the GPU the guided Gram is the Gram kernel weighing each pixel by
 * w = m²/Σm² with N = C (gram.wgsl, W), and its backward dF += w ⊙ (dG·F) the
 * Gram backward scaled per pixel (pointwise.wgsl, SC): no product F·m is
 * ever stored, so the term's memory is its regions' weights (one value per
 * position of each style layer, per region), their targets and dG.
 * Whole and over tiles as the plain term (src/engine/loss/gram_match.ts);
 * each tile's weights are its owned positions of the whole image's. Tested
 * against the reference's goldens and a CPU reference at other sizes by
 * tests/masked_test.ts.
 * @module
 */
import { UserError } from "../errors.ts";
import { planeStride } from "../ops/context.ts";
import { type Dims, layerDims, tapLayerIndex } from "../model/squeezenet.ts";
import type { Tensor } from "../image/types.ts";
import { globalRect } from "../model/tiled_plan.ts";
import { rectSize, type TileGrid } from "../model/tiles.ts";
import { type GramMatch, matchTerm, newMatch } from "./gram_match.ts";
import { guides, guideWeights } from "./guide.ts";
import { checkGramTargets, checkStyleLayers, type StyleLayersSpec } from "./style.ts";
import type { LossTerm, Recorder } from "./term.ts";

/** One region of spatial control: where one style goes. */
export interface Region {
  /** The mask [1, 1, H, W] at the image's size, values in [0, 1] (soft edges allowed). */
  mask: Tensor;
  /** The style's plain Gram at each style layer, [C, C]. */
  targets: Tensor[];
}

/** The guided style term's part of a loss spec. */
export interface GuidedStyleSpec extends StyleLayersSpec {
  /** The regions, each matched to its own style (then there are no `styleTargets`). */
  regions?: Region[];
  styleTargets?: Tensor[];
}

/** Validates the regions of a spec for an h×w image; returns the layers the term reads. */
export function checkGuidedStyle(
  spec: GuidedStyleSpec,
  dims: Dims[],
  h: number,
  w: number,
): number[] {
  if (!spec.regions) return [];
  if (spec.styleTargets) {
    throw new UserError("a loss with regions takes each region's targets, not style targets");
  }
  if (spec.regions.length === 0) throw new UserError("regions: at least one region is needed");
  const layers = checkStyleLayers(spec);
  spec.regions.forEach((r, k) => {
    const s = r.mask.shape;
    if (s.length !== 4 || s[0] !== 1 || s[1] !== 1 || s[2] !== h || s[3] !== w) {
      throw new UserError(
        `region ${k + 1}: its mask must be [1,1,${h},${w}] (the image's size), got [${s}]`,
      );
    }
    if (r.mask.data.length !== h * w || r.mask.data.some((v) => !(v >= 0 && v <= 1))) {
      throw new UserError(`region ${k + 1}: mask values must lie in [0, 1]`);
    }
    checkGramTargets(spec.styleLayers, r.targets, dims, `region ${k + 1}'s target`);
  });
  return layers;
}

/** What of the guided spec the recorded program depends on. */
export function guidedStyleKey(spec: GuidedStyleSpec): unknown {
  return spec.regions ? [spec.styleLayers, spec.styleWeights, spec.regions.length] : null;
}

/** A match of one region at one style layer. */
interface RegionMatch {
  m: GramMatch;
  region: number;
  /** Index in the spec's style layers. */
  k: number;
}

/**
 * Uploads each tile's weights of match `m`: its owned positions of the whole
 * layer's `weights` (`w` wide; zeros where the region vanishes: null).
 */
function writeTileWeights(
  queue: GPUQueue,
  grid: TileGrid,
  m: GramMatch,
  weights: Float64Array | null,
  w: number,
): void {
  grid.tiles.forEach((tile, t) => {
    const buf = m.weights[t];
    if (!buf) return;
    const rect = globalRect(tile, m.layer);
    const [rows, cols] = rectSize(rect);
    const out = new Float32Array(planeStride(rows, cols));
    if (weights) {
      for (let y = 0; y < rows; y++) {
        for (let x = 0; x < cols; x++) out[y * cols + x] = weights[(rect.y0 + y) * w + rect.x0 + x];
      }
    }
    queue.writeBuffer(buf, 0, out);
  });
}

/** The guided style term of a plan; null without regions. */
export function createGuidedStyle(
  r: Recorder,
  grid: TileGrid,
  spec: GuidedStyleSpec,
): LossTerm<GuidedStyleSpec> | null {
  if (!spec.regions) return null;
  const full = layerDims(grid.h, grid.w);
  const matches: (RegionMatch | null)[] = [];
  for (const [k, l] of spec.styleLayers.entries()) {
    for (let region = 0; region < spec.regions.length; region++) {
      if (!(spec.styleWeights[k] > 0)) {
        matches.push(null);
        continue;
      }
      const i = tapLayerIndex(l);
      const m = newMatch(r, {
        layer: i,
        label: `${l}.style.r${region + 1}`,
        c: full[i].c,
        weight: spec.styleWeights[k],
        n: full[i].c,
        tiles: grid.tiles.length,
      });
      // Each tile's weights: its owned positions, compact (row-major), a vec4 apart.
      m.weights = grid.tiles.map((tile) => {
        const [rows, cols] = rectSize(tile.layers[i]);
        return rows > 0 && cols > 0
          ? r.scope.floats(planeStride(rows, cols), `${m.label}.weights.tile${tile.index}`)
          : null;
      });
      matches.push({ m, region, k });
    }
  }
  const active = matches.filter((x): x is RegionMatch => x !== null).map((x) => x.m);
  const n = spec.regions.length;
  return matchTerm(r, matches.map((x) => x?.m ?? null), {
    what: (j) =>
      `the style loss at ${spec.styleLayers[Math.floor(j / n)]} in region ${(j % n) + 1}`,
    write(queue, s) {
      const upto = Math.max(...active.map((m) => m.layer));
      const carried = s.regions!.map((reg) =>
        guides({ h: grid.h, w: grid.w, data: Float64Array.from(reg.mask.data) }, upto)
      );
      for (const x of matches) {
        if (!x) continue;
        const { m } = x;
        const g = carried[x.region][m.layer];
        const weights = guideWeights(g);
        // A region that vanishes here: no weight and a zero target, so no loss.
        const target = new Float32Array(m.c * m.c);
        if (weights) target.set(s.regions![x.region].targets[x.k].data);
        queue.writeBuffer(m.target, 0, target);
        writeTileWeights(queue, grid, m, weights, g.w);
      }
    },
  });
}
