/**
 * Per-adapter autotune of the kernels' tile shapes: each kernel family's
 * candidate tiles are timed on the network's own launches at one image size
 * (GPU timestamps, or per-launch fences without them), alternating the
 * candidates over several rounds; a family keeps its default tile unless a
 * candidate is faster by more than {@link TUNE_MARGIN}. The result is what
 * {@link saveTunedTiles} caches per adapter.
 * @module
 */
import { fenceProfile, type KernelTime, Profiler, Program } from "../gpu/scheduler.ts";
import { conv2d, conv2dBackwardStrided, type ConvShape } from "../ops/conv.ts";
import { OpContext, planeStride, Scope, type TileTable, view } from "../ops/context.ts";
import { gram, gramBackward, gramGeometry } from "../ops/gram.ts";
import { layerDims } from "./squeezenet.ts";
import type { Engine } from "./stylizer.ts";

/** A family keeps its default unless a candidate takes less than (1 − margin) of its time. */
export const TUNE_MARGIN = 0.03;

/** The families tuned, each with its candidates (the default is always tried first). */
export type TuneCandidates = { [K in keyof TileTable]?: TileTable[K][] };

const pw = (TMV: number, TN: number, WG: number) => ({ TMV, TN, WG });
const c3 = (TMV: number, TN: number, WG: number, XV: number) => ({ TMV, TN, WG, U: 1, XV });

/**
 * Candidates from software adapters (few invocations, large register tiles)
 * to GPUs (more invocations per workgroup, smaller tiles per invocation).
 */
export const CANDIDATES: TuneCandidates = {
  pointwise: [
    pw(8, 4, 16),
    pw(8, 4, 8),
    pw(4, 4, 8),
    pw(4, 2, 16),
    pw(2, 2, 64),
    pw(1, 2, 64),
    pw(1, 1, 128),
  ],
  // DEFAULT_TILES' and WIDE_TILES' entries first, so each table's tune can pick the other's.
  gramBackward: [
    pw(8, 4, 16),
    pw(4, 4, 16),
    pw(8, 2, 16),
    pw(2, 2, 64),
    pw(1, 2, 64),
    pw(1, 1, 128),
  ],
  conv3x3: [c3(8, 8, 32, 1), c3(4, 8, 32, 1), c3(4, 4, 64, 1), c3(2, 4, 64, 1), c3(1, 4, 128, 1)],
  conv3x3Gradient: [c3(4, 8, 32, 1), c3(2, 8, 64, 1), c3(2, 4, 64, 1), c3(1, 4, 128, 1)],
  conv3x3Strided: [
    c3(4, 16, 32, 0),
    c3(8, 16, 16, 1),
    c3(4, 8, 64, 1),
    c3(2, 4, 64, 1),
    c3(1, 4, 128, 0),
  ],
  stridedBackward: [{ Q: 8, WG: 64 }, { Q: 4, WG: 128 }, { Q: 8, WG: 16 }],
  gram: [
    // DEFAULT_TILES' and WIDE_TILES' entries, so each table's tune can pick the other's.
    { T: 16, WG: 8, CHUNK: 256, BIG: 0 },
    { T: 16, WG: 16, CHUNK: 256, BIG: 0 },
    { T: 16, WG: 8, CHUNK: 256, BIG: 16 },
    { T: 16, WG: 32, CHUNK: 256, BIG: 0 },
    { T: 8, WG: 32, CHUNK: 256, BIG: 0 },
    { T: 8, WG: 64, CHUNK: 256, BIG: 0 },
    { T: 8, WG: 64, CHUNK: 512, BIG: 0 },
    { T: 8, WG: 128, CHUNK: 1024, BIG: 0 },
  ],
};

/** One family's outcome. */
export interface FamilyResult {
  family: keyof TileTable;
  /** Every candidate tried (the default first) with its best total ms over the rounds. */
  times: { tile: Record<string, number>; ms: number | null; error?: string }[];
  /** The tile kept: the fastest candidate, or the default within the margin. */
  chosen: Record<string, number>;
  /** Whether the chosen tile is not the default. */
  changed: boolean;
}

/** Options of {@link tuneTiles}. */
export interface TuneOptions {
  /** Image size whose launches are timed. */
  h: number;
  w: number;
  /** Rounds over the candidates (≥ 1); each candidate's best round counts. */
  rounds?: number;
  /** Families and candidates to try (default {@link CANDIDATES}). */
  candidates?: TuneCandidates;
  /** The table the candidates replace entries of (default: the engine's). */
  base?: TileTable;
  /** One line per timed candidate. */
  onProgress?: (line: string) => void;
}

/** Records the launches of `family` at the network's shapes for an h×w image. */
async function record(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  family: keyof TileTable,
  h: number,
  w: number,
): Promise<void> {
  const dims = layerDims(h, w);
  // conv1, fire3 and fire5 outputs (the last two as deep as the image allows).
  const taps = [0, 3, 6].filter((i) => i < dims.length).map((i) => dims[i]);
  const buf = (floats: number) => scope.floats(floats, "tune");
  // A style layer's F and its texture copy, as the network's Gram launches read it.
  const textured = (floats: number) => {
    const b = scope.floats(floats, "tune");
    const tex = scope.featureTexture(ctx.device, floats, "tune.tex");
    if (tex) prog.copyToTexture("tune.tex", b, tex.texture);
    return { b, tex: tex ?? undefined };
  };
  // Weights (and dG) as the network holds them, so the same kernel variants run.
  const wbuf = (floats: number) => scope.weights(floats, "tune");
  const one = { kh: 1, kw: 1, stride: 1, pad: 0 };
  const three = { kh: 3, kw: 3, stride: 1, pad: 1 };
  // `tex`: x read from a texture copy, as the network's launch reads it.
  const conv = async (label: string, s: ConvShape, use: "forward" | "gradient", tex = false) => {
    const p = planeStride(s.h, s.w);
    const x = tex ? textured(s.cin * p) : { b: buf(s.cin * p), tex: undefined };
    await conv2d(ctx, scope, prog, {
      label,
      shape: s,
      x: view(x.b, 0, p),
      weights: wbuf(9 * s.cin * s.cout),
      out: view(buf(s.cout * p), 0, p),
      use,
      xTex: x.tex,
    });
  };
  for (const [k, d] of taps.entries()) {
    const sq = d.c / 8; // SqueezeNet's squeeze width: 16 for 128 channels, 32 for 256
    const at = { h: d.h, w: d.w };
    const p = planeStride(d.h, d.w);
    if (k === 0) {
      if (family === "conv3x3Strided") {
        const s = { cin: 3, cout: d.c, h, w, kh: 3, kw: 3, stride: 2, pad: 0 };
        await conv2d(ctx, scope, prog, {
          label: "conv1",
          shape: s,
          x: view(buf(3 * h * w)),
          weights: wbuf(27 * d.c),
          out: view(buf(d.c * p), 0, p),
        });
      }
      if (family === "stridedBackward") {
        await conv2dBackwardStrided(ctx, scope, prog, {
          label: "conv1.back",
          shape: { cin: 3, cout: d.c, h, w, kh: 3, kw: 3, stride: 2, pad: 0 },
          dy: view(buf(d.c * p), 0, p),
          packed: wbuf(d.c * 36),
          dx: view(buf(3 * h * w)),
        });
      }
    } else {
      const e = d.c / 2;
      if (family === "conv3x3") {
        await conv("expand3x3", { ...at, ...three, cin: sq, cout: e }, "forward", true);
      }
      if (family === "conv3x3Gradient") {
        // As the network runs it: both expand layers' gradients in one
        // launch, dy from a texture copy.
        const dy = textured(2 * e * p);
        await conv2d(ctx, scope, prog, {
          label: "expand.back",
          shape: { ...at, ...three, cin: e, cout: sq },
          x: view(dy.b, e * p, p),
          weights: wbuf(9 * e * sq),
          plus1x1: { x: view(dy.b, 0, p), weights: wbuf(e * sq), cin: e },
          out: view(buf(sq * p), 0, p),
          maskOut: view(buf(sq * p), 0, p),
          use: "gradient",
          xTex: dy.tex,
        });
      }
      if (family === "pointwise") {
        // The network's 1×1 launches (expand1x1's gradient runs inside
        // expand.back); fire3's and fire5's squeeze read the layer below from
        // its texture copy, every expand1x1 the squeeze's.
        await conv("squeeze", { ...at, ...one, cin: d.c, cout: sq }, "forward", true);
        await conv("expand1x1", { ...at, ...one, cin: sq, cout: e }, "forward", true);
        await conv("squeeze.back", { ...at, ...one, cin: sq, cout: d.c }, "forward");
      }
    }
    if (family === "gramBackward") {
      const { b, tex } = textured(d.c * p);
      const f = view(b, 0, p);
      await gramBackward(ctx, scope, prog, {
        label: "gram.back",
        c: d.c,
        h: d.h,
        w: d.w,
        f,
        dgram: wbuf(d.c * d.c),
        grad: view(buf(d.c * p), 0, p),
        maskOut: f,
        tex,
      });
    }
    if (family === "gram") {
      const np = d.h * d.w;
      const { b, tex } = textured(d.c * p);
      await gram(ctx, scope, prog, {
        label: "gram",
        c: d.c,
        npix: np,
        f: view(b, 0, p),
        tex,
        scratch: buf(gramGeometry(ctx, d.c, np, !!tex).scratch),
        gram: view(buf(d.c * d.c)),
      });
    }
  }
}

/** Total GPU ms of one run of `prog`'s launches (the best of `reps` runs per launch). */
async function timeProgram(engine: Engine, prog: Program, reps: number): Promise<number> {
  const device = engine.gpu.device;
  const best = new Map<number, number>();
  const keep = (times: KernelTime[]) =>
    times.forEach((t, i) => best.set(i, Math.min(best.get(i) ?? Infinity, t.ms)));
  if (engine.gpu.hasTimestamps) {
    const prof = new Profiler(device, prog.steps.length);
    try {
      for (let r = 0; r < reps; r++) {
        const enc = device.createCommandEncoder();
        prog.encode(enc, prof);
        prof.resolve(enc);
        device.queue.submit([enc.finish()]);
        keep(await prof.read());
      }
    } finally {
      prof.destroy();
    }
  } else {
    for (let r = 0; r < reps; r++) keep(await fenceProfile(device, [prog]));
  }
  return [...best.values()].reduce((a, b) => a + b, 0);
}

/**
 * Times every family's candidates on the engine's adapter and returns, per
 * family, the times and the tile kept.
 */
export async function tuneTiles(engine: Engine, o: TuneOptions): Promise<FamilyResult[]> {
  const base = o.base ?? engine.ctx.tiles;
  const maxWg = engine.gpu.limits.maxComputeInvocationsPerWorkgroup;
  const results: FamilyResult[] = [];
  const families = Object.entries(o.candidates ?? CANDIDATES) as [
    keyof TileTable,
    Record<string, number>[],
  ][];
  for (const [family, extra] of families) {
    const def = base[family] as unknown as Record<string, number>;
    const seen = new Set([JSON.stringify(def)]);
    const tiles = [
      def,
      ...extra.filter((t) => !seen.has(JSON.stringify(t)) && (t.WG ?? 1) <= maxWg),
    ];
    const best: (number | null)[] = tiles.map(() => null);
    const errors: (string | undefined)[] = tiles.map(() => undefined);
    for (let r = 0; r < Math.max(1, o.rounds ?? 3); r++) {
      for (const [i, tile] of tiles.entries()) {
        if (errors[i]) continue;
        const ctx = new OpContext(engine.gpu.device, engine.ctx.pool, engine.ctx.pipelines, {
          ...base,
          [family]: tile,
        });
        const scope = new Scope(engine.ctx.pool);
        try {
          const prog = new Program(engine.gpu.device);
          await record(ctx, scope, prog, family, o.h, o.w);
          const ms = await timeProgram(engine, prog, 3);
          best[i] = Math.min(best[i] ?? Infinity, ms);
          o.onProgress?.(`${family} ${JSON.stringify(tile)}: ${ms.toFixed(3)} ms`);
        } catch (e) {
          // A tile the adapter cannot build (too many registers, limits) is skipped.
          errors[i] = (e as Error).message.split("\n")[0];
          o.onProgress?.(`${family} ${JSON.stringify(tile)}: skipped (${errors[i]})`);
        } finally {
          scope.dispose();
          ctx.destroy();
        }
      }
    }
    let pick = 0;
    for (const [i, ms] of best.entries()) {
      if (ms !== null && (best[pick] === null || ms < best[pick]!)) pick = i;
    }
    // The default stays unless clearly beaten (the times are noisy).
    if (best[0] !== null && best[pick]! > (1 - TUNE_MARGIN) * best[0]) pick = 0;
    results.push({
      family,
      times: tiles.map((tile, i) => ({
        tile,
        ms: best[i],
        ...(errors[i] ? { error: errors[i] } : {}),
      })),
      chosen: tiles[pick],
      changed: pick !== 0,
    });
  }
  return results;
}
