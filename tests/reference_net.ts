/**
 * A CPU reference of the feature network and the losses, in doubles, written
 * from reference.py's definitions (`features`, `pool`, `gram`, the three
 * losses, `loss_and_grad`) with hand-derived backward passes: the oracle of
 * the tests that have no PyTorch golden (average pooling's gradients, images
 * of other sizes). Plain loops, so meant for small images. Its own tests
 * check it against the PyTorch goldens.
 * @module
 */
import type { ConvWeights } from "../src/engine/model/weights.ts";
import type { Pooling } from "../src/engine/ops/pool.ts";
import { poolOut } from "../src/engine/ops/pool.ts";
import { TAP_NAMES, type TapName } from "../src/engine/model/squeezenet.ts";

/** A [C][H][W] activation in doubles. */
export interface Act {
  c: number;
  h: number;
  w: number;
  data: Float64Array;
}

function act(c: number, h: number, w: number): Act {
  return { c, h, w, data: new Float64Array(c * h * w) };
}

/** Convolution (weights [kh][kw][cin][cout]) plus bias, then ReLU. */
function convRelu(x: Act, k: ConvWeights, stride: number, pad: number): Act {
  const oh = Math.floor((x.h + 2 * pad - k.kh) / stride) + 1;
  const ow = Math.floor((x.w + 2 * pad - k.kw) / stride) + 1;
  const y = act(k.cout, oh, ow);
  for (let co = 0; co < k.cout; co++) {
    const out = y.data.subarray(co * oh * ow, (co + 1) * oh * ow);
    out.fill(k.bias[co]);
    for (let ci = 0; ci < k.cin; ci++) {
      const xc = x.data.subarray(ci * x.h * x.w, (ci + 1) * x.h * x.w);
      for (let ky = 0; ky < k.kh; ky++) {
        for (let kx = 0; kx < k.kw; kx++) {
          const wt = k.kernel[((ky * k.kw + kx) * k.cin + ci) * k.cout + co];
          for (let oy = 0; oy < oh; oy++) {
            const iy = oy * stride + ky - pad;
            if (iy < 0 || iy >= x.h) continue;
            for (let ox = 0; ox < ow; ox++) {
              const ix = ox * stride + kx - pad;
              if (ix >= 0 && ix < x.w) out[oy * ow + ox] += wt * xc[iy * x.w + ix];
            }
          }
        }
      }
    }
  }
  for (let i = 0; i < y.data.length; i++) y.data[i] = Math.max(0, y.data[i]);
  return y;
}

/**
 * The input gradient of {@link convRelu} given `y` (its output): dy masked
 * by y > 0, then through the transposed convolution onto an x of `like`'s size.
 */
function convReluBackward(
  dy: Act,
  y: Act,
  k: ConvWeights,
  stride: number,
  pad: number,
  like: { h: number; w: number },
): Act {
  const dx = act(k.cin, like.h, like.w);
  const g = dy.data.map((v, i) => y.data[i] > 0 ? v : 0);
  const [oh, ow] = [dy.h, dy.w];
  for (let co = 0; co < k.cout; co++) {
    const gc = g.subarray(co * oh * ow, (co + 1) * oh * ow);
    for (let ci = 0; ci < k.cin; ci++) {
      const dxc = dx.data.subarray(ci * like.h * like.w, (ci + 1) * like.h * like.w);
      for (let ky = 0; ky < k.kh; ky++) {
        for (let kx = 0; kx < k.kw; kx++) {
          const wt = k.kernel[((ky * k.kw + kx) * k.cin + ci) * k.cout + co];
          for (let oy = 0; oy < oh; oy++) {
            const iy = oy * stride + ky - pad;
            if (iy < 0 || iy >= like.h) continue;
            for (let ox = 0; ox < ow; ox++) {
              const ix = ox * stride + kx - pad;
              if (ix >= 0 && ix < like.w) dxc[iy * like.w + ix] += wt * gc[oy * ow + ox];
            }
          }
        }
      }
    }
  }
  return dx;
}

/** The window (clipped at the edge) of pooled element (oy, ox): [y0, y1) × [x0, x1). */
function window(x: Act, oy: number, ox: number): [number, number, number, number] {
  return [2 * oy, Math.min(2 * oy + 3, x.h), 2 * ox, Math.min(2 * ox + 3, x.w)];
}

/** 3×3 stride-2 ceil-mode pooling (reference.py's `pool`). */
function pool(x: Act, pooling: Pooling): Act {
  const y = act(x.c, poolOut(x.h), poolOut(x.w));
  for (let c = 0; c < x.c; c++) {
    for (let oy = 0; oy < y.h; oy++) {
      for (let ox = 0; ox < y.w; ox++) {
        const [y0, y1, x0, x1] = window(x, oy, ox);
        let best = -Infinity;
        let sum = 0;
        for (let iy = y0; iy < y1; iy++) {
          for (let ix = x0; ix < x1; ix++) {
            const v = x.data[(c * x.h + iy) * x.w + ix];
            best = Math.max(best, v);
            sum += v;
          }
        }
        y.data[(c * y.h + oy) * y.w + ox] = pooling === "max"
          ? best
          : sum / ((y1 - y0) * (x1 - x0));
      }
    }
  }
  return y;
}

/** The input gradient of {@link pool}: max routes dy to the first maximum, avg spreads dy/count. */
function poolBackward(dy: Act, x: Act, pooling: Pooling): Act {
  const dx = act(x.c, x.h, x.w);
  for (let c = 0; c < x.c; c++) {
    for (let oy = 0; oy < dy.h; oy++) {
      for (let ox = 0; ox < dy.w; ox++) {
        const [y0, y1, x0, x1] = window(x, oy, ox);
        const g = dy.data[(c * dy.h + oy) * dy.w + ox];
        if (pooling === "avg") {
          const share = g / ((y1 - y0) * (x1 - x0));
          for (let iy = y0; iy < y1; iy++) {
            for (let ix = x0; ix < x1; ix++) dx.data[(c * x.h + iy) * x.w + ix] += share;
          }
          continue;
        }
        let best = -Infinity;
        let arg = 0;
        for (let iy = y0; iy < y1; iy++) {
          for (let ix = x0; ix < x1; ix++) {
            const i = (c * x.h + iy) * x.w + ix;
            if (x.data[i] > best) [best, arg] = [x.data[i], i];
          }
        }
        dx.data[arg] += g;
      }
    }
  }
  return dx;
}

/** SqueezeNet 1.1 fire modules in order, with the pools before fire2, fire4 and fire6. */
const FIRES: TapName[] = TAP_NAMES.slice(1);
const POOLED = new Set<TapName>(["fire2", "fire4", "fire6"]);

/** Everything the backward pass needs from a forward pass. */
interface Trace {
  input: Act;
  conv1: Act;
  /**
   * Per fire module: the pool's input (null without one), the module's input x
   * (pooled), its squeeze s, expand outputs e1 and e3, and their concatenation.
   */
  fires: { name: TapName; poolIn: Act | null; x: Act; s: Act; e1: Act; e3: Act; out: Act }[];
}

function split(a: Act, at: number): [Act, Act] {
  const n = a.h * a.w;
  return [
    { c: at, h: a.h, w: a.w, data: a.data.slice(0, at * n) },
    { c: a.c - at, h: a.h, w: a.w, data: a.data.slice(at * n) },
  ];
}

function forwardTrace(
  input: Act,
  weights: Map<string, ConvWeights>,
  upto: TapName,
  pooling: Pooling,
): Trace {
  const get = (n: string) => weights.get(n)!;
  const conv1 = convRelu(input, get("conv1"), 2, 0);
  const trace: Trace = { input, conv1, fires: [] };
  let x = conv1;
  if (upto === "conv1") return trace;
  for (const name of FIRES) {
    const poolIn = POOLED.has(name) ? x : null;
    if (poolIn) x = pool(poolIn, pooling);
    const s = convRelu(x, get(`${name}/squeeze1x1`), 1, 0);
    const e1 = convRelu(s, get(`${name}/expand1x1`), 1, 0);
    const e3 = convRelu(s, get(`${name}/expand3x3`), 1, 1);
    const out = act(e1.c + e3.c, s.h, s.w);
    out.data.set(e1.data);
    out.data.set(e3.data, e1.data.length);
    trace.fires.push({ name, poolIn, x, s, e1, e3, out });
    x = out;
    if (name === upto) break;
  }
  return trace;
}

function tapsOf(t: Trace): Map<TapName, Act> {
  return new Map<TapName, Act>([
    ["conv1", t.conv1],
    ...t.fires.map((f) => [f.name, f.out] as const),
  ]);
}

/** A [1,C,H,W] tensor's `shape` and `data` as an {@link Act}. */
export function toAct(shape: number[], data: ArrayLike<number>): Act {
  const [, c, h, w] = shape;
  return { c, h, w, data: Float64Array.from(data) };
}

/** reference.py's `features`: every tap up to `upto` of image x. */
export function features(
  x: Act,
  weights: Map<string, ConvWeights>,
  upto: TapName,
  pooling: Pooling,
): Map<TapName, Act> {
  return tapsOf(forwardTrace(x, weights, upto, pooling));
}

/** reference.py's `gram`: F·Fᵀ / (C·H·W), [C][C]. */
export function gram(f: Act): Float64Array {
  const n = f.h * f.w;
  const g = new Float64Array(f.c * f.c);
  for (let i = 0; i < f.c; i++) {
    const fi = f.data.subarray(i * n, (i + 1) * n);
    for (let j = i; j < f.c; j++) {
      const fj = f.data.subarray(j * n, (j + 1) * n);
      let s = 0;
      for (let p = 0; p < n; p++) s += fi[p] * fj[p];
      g[i * f.c + j] = g[j * f.c + i] = s / (f.c * n);
    }
  }
  return g;
}

/**
 * reference.py's `guide`: a mask (one channel, the image's size) carried to
 * a tap — conv1's window as a 3×3 stride-2 mean (floor), each pooling as a
 * ceil-mode 3×3 stride-2 mean over the window's in-bounds positions.
 */
export function guide(mask: Act, tap: TapName): Act {
  const mean = (m: Act, ceil: boolean): Act => {
    const oh = ceil ? poolOut(m.h) : Math.floor((m.h - 3) / 2) + 1;
    const ow = ceil ? poolOut(m.w) : Math.floor((m.w - 3) / 2) + 1;
    const out = act(1, oh, ow);
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        let s = 0;
        let n = 0;
        for (let y = 2 * oy; y < Math.min(2 * oy + 3, m.h); y++) {
          for (let x = 2 * ox; x < Math.min(2 * ox + 3, m.w); x++, n++) s += m.data[y * m.w + x];
        }
        out.data[oy * ow + ox] = s / n;
      }
    }
    return out;
  };
  let m = mean(mask, false);
  for (const name of ["fire2", "fire3", "fire4", "fire5", "fire6", "fire7", "fire8", "fire9"]) {
    if (TAP_NAMES.indexOf(tap) < TAP_NAMES.indexOf(name as TapName)) break;
    if (name === "fire2" || name === "fire4" || name === "fire6") m = mean(m, true);
  }
  return m;
}

/** reference.py's `gram_guided`: (F·m)(F·m)ᵀ / (C·Σm²); null where Σm² is 0. */
export function gramGuided(f: Act, m: Act): Float64Array | null {
  const n = f.h * f.w;
  let s = 0;
  for (const v of m.data) s += v * v;
  if (s === 0) return null;
  const g = new Float64Array(f.c * f.c);
  for (let i = 0; i < f.c; i++) {
    for (let j = i; j < f.c; j++) {
      let sum = 0;
      for (let p = 0; p < n; p++) {
        sum += f.data[i * n + p] * m.data[p] * f.data[j * n + p] * m.data[p];
      }
      g[i * f.c + j] = g[j * f.c + i] = sum / (f.c * s);
    }
  }
  return g;
}

/** A region of spatial control: a mask (one channel, the image's size) and a Gram target per style layer. */
export interface RefRegion {
  mask: Act;
  targets: ArrayLike<number>[];
}

/** What {@link lossAndGrad} minimises (the fields of the library's LossSpec, targets as arrays). */
export interface RefSpec {
  contentLayer: TapName;
  contentWeight: number;
  contentTarget: ArrayLike<number>;
  styleLayers: TapName[];
  styleWeights: number[];
  /** The plain style term's targets (none with `regions`). */
  styleTargets?: ArrayLike<number>[];
  /** reference.py's `style_loss_masked` instead of `style_loss`. */
  regions?: RefRegion[];
  tvWeight: number;
}

/** reference.py's `loss_and_grad`: the total loss, its terms and d loss / d x. */
export function lossAndGrad(
  x: Act,
  weights: Map<string, ConvWeights>,
  spec: RefSpec,
  pooling: Pooling,
): { loss: number; terms: { content: number; style: number; tv: number }; grad: Float64Array } {
  const layers = [spec.contentLayer, ...spec.styleLayers];
  const upto = TAP_NAMES[Math.max(...layers.map((l) => TAP_NAMES.indexOf(l)))];
  const trace = forwardTrace(x, weights, upto, pooling);
  const taps = tapsOf(trace);
  // d loss / d tap, one per tap a loss uses.
  const dTap = new Map<TapName, Float64Array>();
  const addTo = (l: TapName) => {
    if (!dTap.has(l)) dTap.set(l, new Float64Array(taps.get(l)!.data.length));
    return dTap.get(l)!;
  };
  let content = 0;
  {
    const f = taps.get(spec.contentLayer)!.data;
    const d = addTo(spec.contentLayer);
    for (let i = 0; i < f.length; i++) {
      const r = f[i] - spec.contentTarget[i];
      content += spec.contentWeight * r * r;
      d[i] += 2 * spec.contentWeight * r;
    }
  }
  let style = 0;
  // One Gram matched to target `a`: G = Σ_p w_p·F_p·F_pᵀ / (C·s), w_p = 1 and
  // s = N for the plain Gram, w_p = m_p² and s = Σm² for a guided one.
  const matchGram = (l: TapName, wl: number, a: ArrayLike<number>, m: Act | null) => {
    const f = taps.get(l)!;
    const n = f.h * f.w;
    const g = m ? gramGuided(f, m) : gram(f);
    if (!g) return;
    const pw = m ? m.data.map((v) => v * v) : null;
    const s = pw ? pw.reduce((x, y) => x + y, 0) : n;
    // dL/dG = 2w(G − A); G symmetric, so dL/dF = 2·w_p·dL/dG·F / (C·s).
    const dg = g.map((v, i) => 2 * wl * (v - a[i]));
    for (let i = 0; i < g.length; i++) style += wl * (g[i] - a[i]) ** 2;
    const d = addTo(l);
    for (let i = 0; i < f.c; i++) {
      for (let j = 0; j < f.c; j++) {
        const c = 2 * dg[i * f.c + j] / (f.c * s);
        if (c === 0) continue;
        for (let p = 0; p < n; p++) d[i * n + p] += c * (pw ? pw[p] : 1) * f.data[j * n + p];
      }
    }
  };
  spec.styleLayers.forEach((l, k) => {
    if (spec.regions) {
      for (const r of spec.regions) {
        matchGram(l, spec.styleWeights[k], r.targets[k], guide(r.mask, l));
      }
    } else matchGram(l, spec.styleWeights[k], spec.styleTargets![k], null);
  });
  // TV: wt·(Σ(x[h+1]−x[h])² + Σ(x[w+1]−x[w])²).
  let tv = 0;
  const grad = new Float64Array(x.data.length);
  for (let c = 0; c < x.c; c++) {
    for (let y = 0; y < x.h; y++) {
      for (let xx = 0; xx < x.w; xx++) {
        const i = (c * x.h + y) * x.w + xx;
        if (y + 1 < x.h) {
          const r = x.data[i + x.w] - x.data[i];
          tv += spec.tvWeight * r * r;
          grad[i + x.w] += 2 * spec.tvWeight * r;
          grad[i] -= 2 * spec.tvWeight * r;
        }
        if (xx + 1 < x.w) {
          const r = x.data[i + 1] - x.data[i];
          tv += spec.tvWeight * r * r;
          grad[i + 1] += 2 * spec.tvWeight * r;
          grad[i] -= 2 * spec.tvWeight * r;
        }
      }
    }
  }
  // Back through the fire modules, the pools and conv1.
  const get = (n: string) => weights.get(n)!;
  let d: Act | null = null;
  for (let k = trace.fires.length - 1; k >= 0; k--) {
    const f = trace.fires[k];
    const dOut: Act = d ?? act(f.out.c, f.out.h, f.out.w);
    const extra = dTap.get(f.name);
    if (extra) extra.forEach((v, i) => dOut.data[i] += v);
    const [d1, d3] = split(dOut, f.e1.c);
    const ds1 = convReluBackward(d1, f.e1, get(`${f.name}/expand1x1`), 1, 0, f.s);
    const ds3 = convReluBackward(d3, f.e3, get(`${f.name}/expand3x3`), 1, 1, f.s);
    ds3.data.forEach((v, i) => ds1.data[i] += v);
    let dx = convReluBackward(ds1, f.s, get(`${f.name}/squeeze1x1`), 1, 0, f.x);
    if (f.poolIn) dx = poolBackward(dx, f.poolIn, pooling);
    d = dx;
  }
  const dConv1: Act = d ?? act(trace.conv1.c, trace.conv1.h, trace.conv1.w);
  dTap.get("conv1")?.forEach((v, i) => dConv1.data[i] += v);
  const dx = convReluBackward(dConv1, trace.conv1, get("conv1"), 2, 0, x);
  dx.data.forEach((v, i) => grad[i] += v);
  return { loss: content + style + tv, terms: { content, style, tv }, grad };
}
