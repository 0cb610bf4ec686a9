/**
 * Masks carried down the network (Gatys et al. 2017, "simple" guidance;
 * reference.py's `guide`): conv1's 3×3 stride-2 window becomes a 3×3 stride-2
 * mean with no padding, each 3×3 stride-2 pooling the ceil-mode mean over the
 * window's positions inside the input (whatever the network's pooling), and
 * the fire modules keep the mask. A mask is a constant of the loss, so this
 * runs once per spec, on the CPU, in doubles.
 * @module
 */
import { poolOut } from "../ops/pool.ts";
import { convOut } from "../ops/conv.ts";
import { SQUEEZENET } from "../model/squeezenet.ts";

/** A single-channel map: h×w values, row-major. */
export interface Plane {
  h: number;
  w: number;
  data: Float64Array;
}

/** The mean of each 3×3 stride-2 window; `ceil`: ceil-mode windows, averaged over their in-bounds part. */
function mean3x3s2(m: Plane, ceil: boolean): Plane {
  const oh = ceil ? poolOut(m.h) : convOut(m.h, 3, 2, 0);
  const ow = ceil ? poolOut(m.w) : convOut(m.w, 3, 2, 0);
  const out = new Float64Array(oh * ow);
  for (let oy = 0; oy < oh; oy++) {
    const y1 = Math.min(2 * oy + 3, m.h);
    for (let ox = 0; ox < ow; ox++) {
      const x1 = Math.min(2 * ox + 3, m.w);
      let s = 0;
      for (let y = 2 * oy; y < y1; y++) {
        for (let x = 2 * ox; x < x1; x++) s += m.data[y * m.w + x];
      }
      out[oy * ow + ox] = s / ((y1 - 2 * oy) * (x1 - 2 * ox));
    }
  }
  return { h: oh, w: ow, data: out };
}

/**
 * The mask carried to the output of every layer 0…`upto` (network indices
 * of src/engine/model/squeezenet.ts's SQUEEZENET), sized as those outputs.
 */
export function guides(mask: Plane, upto: number): Plane[] {
  const out: Plane[] = [];
  let m = mask;
  for (let i = 0; i <= upto; i++) {
    const l = SQUEEZENET[i];
    if (l.kind === "conv") m = mean3x3s2(m, false);
    else if (l.kind === "pool") m = mean3x3s2(m, true);
    out.push(m);
  }
  return out;
}

/**
 * The pixel weights of a guided Gram at one layer, m²/Σm², which make the
 * weighted Gram Σ_p w_p·F_p·F_pᵀ / C equal (F·m)(F·m)ᵀ / (C·Σm²); null
 * where Σm² is 0 (the region vanishes there and adds nothing).
 */
export function guideWeights(g: Plane): Float64Array | null {
  let s = 0;
  for (const v of g.data) s += v * v;
  if (s === 0) return null;
  return g.data.map((v) => v * v / s);
}
