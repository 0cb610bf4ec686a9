/**
 * Gram-matrix wrapper over src/engine/shaders/gram.wgsl: G = F·Fᵀ/(C·H·W) computed
 * on the upper block triangle over pixel chunks, then reduced, optionally
 * with the style loss w·Σ(G−A)² and dG = (4w/N)·(G−A). The backward
 * dF += dG·F is a 1×1 convolution by dG (conv.ts).
 * @module
 */
import gramSource from "../shaders/gram.wgsl" with { type: "text" };
import shift4 from "../shaders/shift4.wgsl" with { type: "text" };
import workgroupSum from "../shaders/workgroup_sum.wgsl" with { type: "text" };
import type { Binding, Program } from "../gpu/scheduler.ts";
import { conv2d } from "./conv.ts";
import {
  checkTextureHolds,
  type FeatureTexture,
  type OpContext,
  type Scope,
  textureShift,
  type View,
} from "./context.ts";

const source = `${gramSource}\n${shift4}\n${workgroupSum}`;

/** Number of per-workgroup partial sums {@link gram} writes with a loss. */
export const GRAM_LOSS_PARTS = 16;

/** The tiling of a Gram (see {@link gramGeometry}). */
export interface GramGeometry {
  /** Tile side. */
  T: number;
  /** Tiles per side (C / T). */
  nb: number;
  /** Tiles of the upper block triangle. */
  ntiles: number;
  /** Pixel chunks. */
  nchunks: number;
  /** Pixels per chunk. */
  chunk: number;
  /** Floats of the partial sums' scratch: nchunks chunks of ntiles·T² floats. */
  scratch: number;
}

/**
 * The tiling of a Gram of `c` channels over `npix` pixels: the tile table's
 * side T, halved (down to 4) while it does not divide c; doubled, when F is
 * `textured` (fetched from a texture copy), for at least BIG pixel chunks.
 * The buffer kernel keeps T: at 2T it takes lavapipe minutes to compile
 * (120 s against 20 s for the texture one). `side` forces T (the tiles of a
 * split image, whose partial sums one reduce adds up, must share it).
 */
export function gramGeometry(
  ctx: OpContext,
  c: number,
  npix: number,
  textured = false,
  side?: number,
): GramGeometry {
  let { T } = ctx.tiles.gram;
  const { CHUNK, BIG } = ctx.tiles.gram;
  if (T % 4 || CHUNK % 4) throw new RangeError(`Gram tile: T and CHUNK must be multiples of 4`);
  while (c % T && T > 4 && T % 8 === 0) T /= 2;
  if (c % T) throw new RangeError(`Gram of ${c} channels: channels must be a multiple of ${T}`);
  const nchunks = Math.ceil(npix / CHUNK);
  // Many pixels per channel: larger tiles (half the fetches per product).
  if (textured && BIG > 0 && nchunks >= BIG && c % (2 * T) === 0) T *= 2;
  if (side !== undefined) {
    if (c % side || side % 4) throw new RangeError(`Gram of ${c} channels: no tile side ${side}`);
    T = side;
  }
  const nb = c / T;
  const ntiles = nb * (nb + 1) / 2;
  return { T, nb, ntiles, nchunks, chunk: CHUNK, scratch: nchunks * ntiles * T * T };
}

/** Options of {@link gram}. */
export interface GramOptions {
  label: string;
  c: number;
  npix: number;
  /**
   * Features F [C][P], rows `f.plane` apart (dense when absent): the buffer
   * must be bound from its start (vec4 loads).
   */
  f: View;
  /**
   * A copy of F's buffer in a {@link FeatureTexture}, made before this runs
   * (optional; F's plane stride a multiple of 4): the partial sums then fetch
   * F's vec4s from it, much faster on lavapipe.
   */
  tex?: FeatureTexture;
  /** Scratch of at least `gramGeometry(ctx, c, npix, tex !== undefined).scratch` floats. */
  scratch: GPUBuffer;
  /**
   * Per-pixel weights w [P] (a View at an offset multiple of 4, read at
   * `offset + p`): G = Σ_p w_p·F_p·F_pᵀ / N — with w = m²/Σm² and N = C, the
   * guided Gram of spatial control (src/engine/loss/guided_style.ts).
   */
  weight?: View;
  /** N, the divisor (default C·P). */
  n?: number;
  /** Receives G [C][C]; may be left out with a loss (which needs only dG). */
  gram?: View;
  /** With a loss: target A, weight, dG buffer [C][C], and where the partial sums go. */
  loss?: GramLoss;
}

/** The style loss a Gram's reduce may form: target A, weight, dG [C][C], loss partials. */
export interface GramLoss {
  target: GPUBuffer;
  weight: number;
  dgram: GPUBuffer;
  parts: View;
}

/** The Params words of gram.wgsl. */
function gramParams(
  o: {
    c: number;
    npix: number;
    fOff: number;
    gOff: number;
    partOff: number;
    stride: number;
    wOff?: number;
  },
  geo: GramGeometry,
  texShift: number,
  n: number,
  weight: number,
): Uint32Array<ArrayBuffer> {
  const buf = new ArrayBuffer(64);
  new Uint32Array(buf).set([
    o.c,
    o.npix,
    geo.chunk,
    geo.nb,
    geo.ntiles,
    geo.nchunks,
    o.fOff,
    o.gOff,
    o.partOff,
    o.stride,
    texShift,
    o.wOff ?? 0,
  ]);
  new Float32Array(buf).set([1 / n, weight, 4 * weight / n, 0], 12);
  return new Uint32Array(buf);
}

/** Appends the Gram matrix (and optionally the style loss and dG) to `prog`. */
export async function gram(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  o: GramOptions,
): Promise<void> {
  const geo = gramGeometry(ctx, o.c, o.npix, o.tex !== undefined);
  if (!o.gram && !o.loss) throw new RangeError(`${o.label}: neither G nor a loss asked for`);
  await gramPartials(ctx, scope, prog, { ...o, geo });
  await gramReduce(ctx, scope, prog, {
    label: o.label,
    c: o.c,
    n: o.n ?? o.c * o.npix,
    geo,
    scratch: o.scratch,
    gram: o.gram,
    loss: o.loss,
  });
}

/**
 * Appends a Gram's partial sums: F's pixels, chunk by chunk, into `scratch`
 * (tiling `geo`; `gramGeometry(...).scratch` floats).
 */
export async function gramPartials(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  o: {
    label: string;
    c: number;
    npix: number;
    f: View;
    tex?: FeatureTexture;
    /** Per-pixel weights (see {@link GramOptions.weight}). */
    weight?: View;
    scratch: GPUBuffer;
    geo: GramGeometry;
  },
): Promise<void> {
  const { geo } = o;
  const t = ctx.tiles.gram;
  const stride = o.f.plane ?? o.npix;
  const w = o.weight;
  if (w && w.offset % 4) {
    throw new RangeError(`${o.label}: the weights' offset must be a multiple of 4`);
  }
  const u = ctx.uniform(
    scope,
    gramParams(
      { c: o.c, npix: o.npix, fOff: o.f.offset, gOff: 0, partOff: 0, stride, wOff: w?.offset },
      geo,
      textureShift(o.tex),
      o.c * o.npix,
      0,
    ),
    `${o.label}.params`,
  );
  const template = { T: geo.T, WG: t.WG };
  const tex = o.tex;
  if (tex && (stride % 4 || o.f.offset % 4)) {
    throw new RangeError(`${o.label}: a texture needs F's offset and plane stride multiples of 4`);
  }
  checkTextureHolds(tex, o.f.offset + (o.c - 1) * stride + o.npix, o.label, "F");
  // Two launches: the tiles off the diagonal (none when C = T), then the
  // diagonal ones (symmetric: half the products, half the loads).
  const off = geo.nb * (geo.nb - 1) / 2;
  const launches = [
    { D: 0, tiles: off, pairs: geo.T * geo.T, suffix: "" },
    { D: 1, tiles: geo.nb, pairs: geo.T * (geo.T + 1) / 2, suffix: ".diag" },
  ];
  for (const { D, tiles, pairs, suffix } of launches) {
    if (tiles === 0) continue;
    const partial = await ctx.pipelines.get({
      name: "gram.wgsl",
      source,
      // Each row's realignment is then a constant of the kernel.
      template: {
        ...template,
        D,
        S: stride % 4,
        O: o.f.offset % 4,
        TEX: tex ? 1 : 0,
        W: w ? 1 : 0,
      },
      entry: "partial",
    });
    const groups = Math.ceil(tiles * geo.nchunks / t.WG);
    const gx = Math.min(groups, ctx.device.limits.maxComputeWorkgroupsPerDimension);
    // With the texture, F's buffer is read only for an odd tail (binding 2).
    const bindings: Binding[] = [u, tex ? null : o.f.buffer, o.f.buffer, o.scratch];
    if (tex || w) bindings.push(...Array(6).fill(null), tex?.view ?? null);
    if (w) bindings.push(null, w.buffer, w.buffer);
    prog.dispatch(`${o.label}.partial${suffix}`, partial, bindings, [
      gx,
      Math.ceil(groups / gx),
    ], 2 * tiles * pairs * o.npix);
  }
}

/**
 * Appends the sum of a partial scratch's chunks (tiling `geo`) into chunk
 * `slot` of `acc`: one tile of a split image, whose tiles {@link gramReduce}
 * then sums as chunks (with `nchunks` the number of tiles).
 */
export async function gramCollapse(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  o: { label: string; geo: GramGeometry; scratch: GPUBuffer; acc: GPUBuffer; slot: number },
): Promise<void> {
  const { geo } = o;
  const pipeline = await ctx.pipelines.get({
    name: "gram.wgsl",
    source,
    template: { T: geo.T, WG: ctx.tiles.gram.WG, D: 0, S: 0, O: 0, TEX: 0, W: 0 },
    entry: "collapse",
  });
  const chunkFloats = geo.ntiles * geo.T * geo.T;
  const u = ctx.uniform(
    scope,
    gramParams(
      { c: geo.nb * geo.T, npix: 0, fOff: 0, gOff: o.slot * chunkFloats, partOff: 0, stride: 0 },
      geo,
      0,
      1,
      0,
    ),
    `${o.label}.params`,
  );
  const bindings: Binding[] = [u, ...Array(8).fill(null), o.scratch, null, o.acc];
  prog.dispatch(o.label, pipeline, bindings, [Math.ceil(chunkFloats / 4 / 64)], 0);
}

/**
 * Appends a Gram's reduce: `geo.nchunks` chunks of partial sums in `scratch`
 * summed, scaled by 1/n (n = C·P of the whole image), written to G and/or
 * turned into the style loss and dG.
 */
export async function gramReduce(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  o: {
    label: string;
    c: number;
    n: number;
    geo: GramGeometry;
    scratch: GPUBuffer;
    gram?: View;
    loss?: GramLoss;
  },
): Promise<void> {
  const { geo } = o;
  if (!o.gram && !o.loss) throw new RangeError(`${o.label}: neither G nor a loss asked for`);
  if (o.gram && o.gram.offset % 4) {
    throw new RangeError(`${o.label}: G's offset must be a multiple of 4`);
  }
  const u = ctx.uniform(
    scope,
    gramParams(
      {
        c: o.c,
        npix: 0,
        fOff: 0,
        gOff: o.gram?.offset ?? 0,
        partOff: o.loss?.parts.offset ?? 0,
        stride: 0,
      },
      geo,
      0,
      o.n,
      o.loss?.weight ?? 0,
    ),
    `${o.label}.reduce.params`,
  );
  const reduce = await ctx.pipelines.get({
    name: "gram.wgsl",
    source,
    template: { T: geo.T, WG: ctx.tiles.gram.WG, D: 0, S: 0, O: 0, TEX: 0, W: 0 },
    entry: "reduce",
    constants: { LOSS: o.loss ? 1 : 0, WRITE_G: o.gram ? 1 : 0 },
  });
  const l = o.loss;
  prog.dispatch(
    `${o.label}.reduce`,
    reduce,
    [
      u,
      null,
      null,
      null,
      // Without a loss the kernel skips these, but its layout still has them.
      l ? l.target : ctx.dummy,
      o.gram ? o.gram.buffer : scope.floats(4, `${o.label}.unused`),
      l ? l.dgram : scope.floats(4, `${o.label}.unused`),
      l ? l.parts.buffer : scope.floats(1, `${o.label}.unused`),
      null,
      o.scratch,
    ],
    // One 4×4 block of a tile per invocation (256 per workgroup).
    [
      l
        ? GRAM_LOSS_PARTS
        : Math.min(GRAM_LOSS_PARTS, Math.ceil(geo.ntiles * (geo.T / 4) ** 2 / 256)),
    ],
    geo.nchunks * o.c * o.c,
  );
}

/**
 * Appends dF += dG·F (dG symmetric [C][C], already scaled by 4w/N) into
 * `grad` (or dF = dG·F, without `accumulate`), optionally masked.
 */
export async function gramBackward(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  o: {
    label: string;
    c: number;
    h: number;
    w: number;
    f: View;
    dgram: GPUBuffer;
    grad: View;
    /** Multiply the accumulated gradient by (maskOut > 0): a fused ReLU backward. */
    maskOut?: View;
    /**
     * Per-pixel weights w (read at `offset + p`): dF += w ⊙ (dG·F), the
     * backward of a Gram weighted by w ({@link GramOptions.weight}).
     */
    scale?: View;
    /** Add into `grad` (the default) or, false, overwrite it. */
    accumulate?: boolean;
    /**
     * A texture copy of F's buffer (optional): F, and the mask when it is
     * F's buffer, are fetched from it.
     */
    tex?: FeatureTexture;
    /** Only the first `extent` pixels of each plane (a multiple of 4; see conv2d). */
    extent?: number;
  },
): Promise<void> {
  await conv2d(ctx, scope, prog, {
    extent: o.extent,
    label: o.label,
    shape: { cin: o.c, cout: o.c, h: o.h, w: o.w, kh: 1, kw: 1, stride: 1, pad: 0 },
    x: o.f,
    weights: o.dgram,
    out: o.grad,
    accumulate: o.accumulate ?? true,
    maskOut: o.maskOut,
    scaleOut: o.scale,
    use: "gram",
    xTex: o.tex,
    maskTex: o.maskOut?.buffer === o.f.buffer ? o.tex : undefined,
  });
}
