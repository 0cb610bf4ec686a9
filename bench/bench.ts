/**
 * `deno task bench`: ms per style-transfer iteration (forward to fire5,
 * losses, backward, Adam) of the reference configuration at given sizes, with
 * per-kernel GPU times, pool counters, time to the first iteration, and
 * optionally a TensorFlow.js-WebGPU peer on the same adapter.
 *
 *   deno task bench [--sizes 192x256,512x683] [--iters 6] [--warmup 3]
 *                   [--json] [--kernels N] [--peer tfjs] [--weights PATH]
 *                   [--tiles JSON]   (entries replacing the default tile table)
 *                   [--profile timestamps|fences]   (per-kernel times; fences:
 *                   each launch submitted alone, for adapters without
 *                   timestamp-query, the default there)
 *                   [--browser]   (the same iteration in headless Chromium:
 *                   tools/web/bench_browser.ts, its own configuration)
 *                   [--regions N]   (spatial control: N regions, soft vertical
 *                   bands, each matched to the style: the guided style term)
 * @module
 */
import { parseArgs } from "node:util";
import {
  fenceProfile,
  type KernelTime,
  Profiler,
  ReadbackBatches,
} from "../src/engine/gpu/scheduler.ts";
import { resize, toTensor } from "../src/engine/image/mod.ts";
import { readImage } from "../src/deno/image/mod.ts";
import { createEngine } from "../src/deno/stylizer.ts";
import {
  DEFAULT_CONFIG,
  Optimizer,
  READ_BATCH,
  styleTargets,
} from "../src/engine/model/optimize.ts";
import { tapLayerIndex } from "../src/engine/model/squeezenet.ts";
import type { Engine, Tensor } from "../src/engine/model/stylizer.ts";
import { UserError } from "../src/engine/errors.ts";

/** Prints a usage error as one line and exits with code 2. */
function fail(message: string): never {
  console.error(`bench: ${message}`);
  Deno.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    args: Deno.args,
    options: {
      sizes: { type: "string", default: "192x256,512x683" },
      iters: { type: "string", default: "6" },
      warmup: { type: "string", default: "3" },
      json: { type: "boolean", default: false },
      kernels: { type: "string", default: "12" },
      peer: { type: "string" },
      weights: { type: "string" },
      tiles: { type: "string" },
      profile: { type: "string" },
      browser: { type: "boolean", default: false },
      regions: { type: "string", default: "0" },
    },
  });
} catch (e) {
  fail((e as Error).message.split("\n")[0]);
}
const { values } = parsed;

/** A non-negative integer flag. */
function count(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) fail(`--${flag}: "${v}" is not a non-negative integer`);
  return n;
}

const sizes = values.sizes.split(",").map((spec) => {
  const m = /^(\d+)x(\d+)$/.exec(spec.trim());
  if (!m || Number(m[1]) < 3 || Number(m[2]) < 3) {
    fail(`--sizes: "${spec}" is not HxW (e.g. 192x256, at least 3x3)`);
  }
  return [Number(m[1]), Number(m[2])];
});
// Timed batches (of BATCH iterations each): at least 30 iterations.
const iters = Math.max(3, count("iters", values.iters));
const warmup = Math.max(1, count("warmup", values.warmup));
const topKernels = count("kernels", values.kernels);
const regionCount = count("regions", values.regions);
if (values.peer !== undefined && values.peer !== "tfjs") {
  fail(`--peer: unknown peer "${values.peer}" (known: tfjs)`);
}
if (values.profile !== undefined && !["timestamps", "fences"].includes(values.profile)) {
  fail(`--profile: timestamps or fences, not "${values.profile}"`);
}
let tiles;
try {
  tiles = values.tiles ? JSON.parse(values.tiles) : undefined;
} catch {
  fail(`--tiles: not JSON: ${values.tiles}`);
}

/** One size's results (the `--json` object). */
export interface BenchResult {
  size: [number, number];
  ms_per_iter: number;
  ms_min: number;
  ms_max: number;
  /** How the times were taken. */
  timing: string;
  /** How the per-kernel times were taken: GPU timestamps, or per-launch fences. */
  profile: "timestamps" | "fences";
  gflops: number;
  gflop_per_iter: number;
  kernels: { name: string; ms: number; gflop: number }[];
  /**
   * ms per iteration as a run pays it: the loss terms copied out and read
   * back every iteration through a ring of staging buffers, as the CLI's
   * loop does (`ms_per_iter` leaves the read-back out).
   */
  ms_per_iter_readback: number;
  /** GPU memory at its peak for this size (its plans, from the style targets to the loop). */
  peak_bytes: number;
  /** `peak_bytes` per pixel of the image. */
  bytes_per_pixel: number;
  /** The largest buffer made. */
  largest_buffer_bytes: number;
  /** Tiles the image is split into (1: whole). */
  tiles: number;
  /** Regions of spatial control (0: the plain style term). */
  regions: number;
  buffers: number;
  /** Textures made beside the pool's buffers. */
  textures: number;
  allocations_after_first_iteration: number;
  first_iteration_ms: number;
  adapter: string;
  /** Where the tile table came from: "default", "given" (--tiles) or a tuned-tiles file. */
  tiles_source: string;
  /**
   * The peer, timed between two sets of stylize batches; `ratio` is the peer's
   * ms per iteration over stylize's median of both sets (`stylize_ms_around`).
   */
  peer?: {
    name: string;
    backend: string;
    ms_per_iter: number;
    stylize_ms_after: number;
    stylize_ms_around: number;
    ratio: number;
  };
  /**
   * The same iteration in headless Chromium (its own adapter: SwiftShader
   * where there is no GPU); `ratio` is its ms per iteration over stylize's.
   */
  browser?: { adapter: string; ms_per_iter: number; first_iteration_ms: number; ratio: number };
  /** Median ms of the forward pass to fire5 alone and of loss + gradient (no Adam). */
  parts: Record<string, number>;
  /** Share of the profiled kernel time by kind (gram, conv, other). */
  shares: Record<string, number>;
}

/**
 * Iterations per timed batch. The CLI never waits for the GPU between
 * iterations; each wait here adds the queue's fixed latency (~12 ms on
 * lavapipe) with the GPU idle, so a batch is long enough to spread it.
 */
const BATCH = 10;

/** Runs `batches` batches of BATCH submissions; returns ms per submission of each batch. */
async function timeBatches(
  batches: number,
  submit: () => void | Promise<void>,
  finish: () => Promise<void> = () => device.queue.onSubmittedWorkDone(),
): Promise<number[]> {
  const out: number[] = [];
  for (let b = 0; b < batches; b++) {
    const t = performance.now();
    for (let k = 0; k < BATCH; k++) await submit();
    await finish();
    out.push((performance.now() - t) / BATCH);
  }
  return out;
}

const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * Runs a peer in a child process: `script` of the folder `dir`, with that
 * folder's own configuration and lockfile (so the bench's users download its
 * packages only when they ask for it); returns its last stdout line, parsed.
 */
async function runPeer<T>(dir: URL, script: string, args: string[], what: string): Promise<T> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--config",
      new URL("deno.json", dir).pathname,
      new URL(script, dir).pathname,
      ...args,
    ],
    stdin: "null",
    stderr: "inherit",
  }).output();
  if (out.code !== 0) fail(`the ${what} peer failed (exit ${out.code})`);
  return JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
}

/** The `--weights` flag passed on to a peer, if given. */
const weightsArgs = (weights?: string) => weights ? ["--weights", weights] : [];

/** Runs the TensorFlow.js peer (bench/tfjs/) on the same example at h×w. */
function runTfjsPeer(
  h: number,
  w: number,
  iters: number,
  weights?: string,
): Promise<{ name: string; backend: string; msPerIter: number }> {
  return runPeer(new URL("./tfjs/", import.meta.url), "peer_tfjs.ts", [
    "--size",
    `${h}x${w}`,
    "--iters",
    String(iters),
    ...weightsArgs(weights),
  ], "TensorFlow.js");
}

/** Times the same iteration at h×w in headless Chromium (tools/web/bench_browser.ts). */
function runBrowserPeer(
  h: number,
  w: number,
  weights?: string,
): Promise<{ adapter: string; ms_per_iter: number; first_iteration_ms: number }> {
  return runPeer(new URL("../tools/web/", import.meta.url), "bench_browser.ts", [
    "--sizes",
    `${h}x${w}`,
    // The same batches as stylize's own: BATCH iterations each, iters of them after warmup.
    "--batch",
    String(BATCH),
    "--batches",
    String(iters),
    "--warmup",
    String(warmup),
    ...weightsArgs(weights),
  ], "browser");
}

/**
 * `n` masks splitting an h×w image into vertical bands with soft edges (a
 * ramp 1/8 of a band wide), which sum to 1 everywhere.
 */
function bandMasks(n: number, h: number, w: number): Tensor[] {
  const band = w / n;
  const ramp = band / 8;
  return Array.from({ length: n }, (_, k) => {
    const data = new Float32Array(h * w);
    for (let x = 0; x < w; x++) {
      const lo = k === 0 ? 1 : Math.min(1, Math.max(0, 0.5 + (x - k * band) / ramp));
      const hi = k === n - 1 ? 1 : Math.min(1, Math.max(0, 0.5 - (x - (k + 1) * band) / ramp));
      for (let y = 0; y < h; y++) data[y * w + x] = Math.min(lo, hi);
    }
    return { shape: [1, 1, h, w], data };
  });
}

async function image(name: string, h: number, w: number): Promise<Tensor> {
  const img = await readImage(new URL(`../examples/${name}`, import.meta.url).pathname);
  return toTensor(resize(img, w, h));
}

const t0 = performance.now();
let engine: Engine;
try {
  engine = await createEngine({ weights: values.weights, tiles });
} catch (e) {
  // Missing weights, no adapter: the user's to fix, in one line.
  if (e instanceof UserError) fail(e.message);
  throw e;
}
const device = engine.gpu.device;
const profileMode = (values.profile ?? (engine.gpu.hasTimestamps ? "timestamps" : "fences")) as
  | "timestamps"
  | "fences";
if (profileMode === "timestamps" && !engine.gpu.hasTimestamps) {
  fail("--profile timestamps: this adapter has no timestamp-query");
}
const engineMs = performance.now() - t0;
const results: BenchResult[] = [];

for (const [h, w] of sizes) {
  const content = await image("chelsea.png", h, w);
  const style = await image("hubble_deep_field.jpg", h, w);
  // Each size measured on its own, as a run makes its plans (src/engine/model/schedule.ts).
  engine.dropPlans();
  engine.ctx.pool.resetPeak();
  const tFirst = performance.now();
  const targets = await styleTargets(engine, [style], DEFAULT_CONFIG.styleLayers);
  engine.dropPlans();
  const config = { ...DEFAULT_CONFIG, iters: 1 << 30, decayAt: 1 << 30 };
  const style_ = regionCount > 0
    ? { regions: bandMasks(regionCount, h, w).map((mask) => ({ mask, targets })) }
    : { styleTargets: targets };
  const opt = await Optimizer.create(engine, { content, ...style_, config });
  let enc = device.createCommandEncoder();
  opt.encode(enc, 0);
  device.queue.submit([enc.finish()]);
  await device.queue.onSubmittedWorkDone();
  const firstMs = performance.now() - tFirst + (results.length === 0 ? engineMs : 0);
  // Buffers and textures made: none may be made after the first iteration.
  const made = () => engine.poolStats.allocations + engine.poolStats.textures;
  const allocs = made();
  let i = 1;
  for (; i <= warmup; i++) {
    enc = device.createCommandEncoder();
    opt.encode(enc, i);
    device.queue.submit([enc.finish()]);
  }
  await device.queue.onSubmittedWorkDone();
  // Wall time, pipelined as the CLI runs: batches of BATCH iterations submitted
  // back to back, one wait per batch (the wait's fixed latency is spread over
  // the batch); ms per iteration of each batch, over `iters` batches.
  const times = await timeBatches(iters, () => {
    enc = device.createCommandEncoder();
    opt.encode(enc, i++);
    device.queue.submit([enc.finish()]);
  });
  const wallMs = median(times);
  // As a run pays it: each iteration's loss terms read back, READ_BATCH at a
  // time, as the CLI's loop reads them (optimize.ts).
  const reads = new ReadbackBatches(device, opt.plan.partsFloats * 4, READ_BATCH);
  const readback = await timeBatches(Math.max(2, Math.ceil(iters / 2)), async () => {
    enc = device.createCommandEncoder();
    opt.encode(enc, i++);
    reads.record(enc, opt.plan.parts);
    device.queue.submit([enc.finish()]);
    if (reads.full) await reads.flush();
    while (reads.inFlight > 1) await reads.take();
  }, async () => {
    await reads.flush();
    while (reads.inFlight > 0) await reads.take();
  });
  await reads.destroy();
  // Allocations by the iterations after the first (the measurements below
  // build plans of their own), and the memory the run's plans took.
  const allocsLoop = made() - allocs;
  const memory = { ...engine.poolStats };
  // Parts of an iteration: the forward pass to fire5 alone, and loss + gradient (no Adam).
  const parts: Record<string, number> = {};
  // (A size split into tiles has no whole-image forward plan.)
  const fwdPlan = opt.plan.tiles > 1
    ? null
    : await engine.forwardPlan(h, w, tapLayerIndex("fire5"));
  for (
    const [name, prog] of [
      ...(fwdPlan ? [["forward_fire5", fwdPlan.prog] as const] : []),
      ["loss_and_gradient", opt.plan.prog] as const,
    ]
  ) {
    parts[name] = median(
      await timeBatches(3, () => {
        enc = device.createCommandEncoder();
        prog.encode(enc);
        device.queue.submit([enc.finish()]);
      }),
    );
  }
  // Per-kernel profile, a separate mode: each launch in its own timestamped
  // pass, or (without timestamp queries, or asked for) submitted alone and
  // waited for.
  const byKernel = new Map<string, { ms: number[]; flops: number }>();
  const add = (times: KernelTime[]) => {
    for (const k of times) {
      const e = byKernel.get(k.label) ?? { ms: [], flops: k.flops };
      e.ms.push(k.ms);
      byKernel.set(k.label, e);
    }
  };
  if (profileMode === "timestamps") {
    const n = opt.plan.prog.dispatchCount + opt.step.dispatchCount;
    const prof = new Profiler(device, n);
    for (let r = 0; r < 3; r++, i++) {
      enc = device.createCommandEncoder();
      opt.encode(enc, i, prof);
      prof.resolve(enc);
      device.queue.submit([enc.finish()]);
      add(await prof.read());
    }
    prof.destroy();
  } else {
    for (let r = 0; r < 3; r++, i++) add(await fenceProfile(device, opt.prepare(i)));
  }
  const kernels = [...byKernel].map(([name, e]) => ({
    name,
    ms: median(e.ms),
    gflop: e.flops / 1e9,
  })).sort((a, b) => b.ms - a.ms);
  const flops = [...opt.plan.prog.steps, ...opt.step.steps]
    .reduce((a, st) => a + (st.kind === "dispatch" ? st.flops : 0), 0);
  const msPerIter = wallMs;
  const kind = (name: string) =>
    name.includes("gram") ? "gram" : /conv|fire/.test(name) ? "conv" : "other";
  const kernelMs = kernels.reduce((a, k) => a + k.ms, 0);
  const shares: Record<string, number> = {};
  for (const k of kernels) shares[kind(k.name)] = (shares[kind(k.name)] ?? 0) + k.ms / kernelMs;
  const stats = memory;
  const result: BenchResult = {
    size: [h, w],
    ms_per_iter: msPerIter,
    ms_min: Math.min(...times),
    ms_max: Math.max(...times),
    timing: `wall clock, batches of ${BATCH} pipelined iterations`,
    profile: profileMode,
    gflops: flops / msPerIter / 1e6,
    gflop_per_iter: flops / 1e9,
    kernels,
    ms_per_iter_readback: median(readback),
    peak_bytes: stats.peakBytes,
    bytes_per_pixel: stats.peakBytes / (h * w),
    largest_buffer_bytes: stats.largestBufferBytes,
    tiles: opt.plan.tiles,
    regions: regionCount,
    buffers: stats.allocations,
    textures: stats.textures,
    allocations_after_first_iteration: allocsLoop,
    first_iteration_ms: firstMs,
    adapter: engine.gpu.adapterName,
    tiles_source: engine.tilesSource,
    parts,
    shares,
  };
  if (values.peer === "tfjs") {
    const p = await runTfjsPeer(h, w, Math.min(iters, 5), values.weights);
    // stylize again right after the peer: the ratio is taken against the
    // batches before and after it, so a drift of this shared machine's speed
    // during the run does not favour either side.
    const after = await timeBatches(iters, () => {
      enc = device.createCommandEncoder();
      opt.encode(enc, i++);
      device.queue.submit([enc.finish()]);
    });
    const around = median([...times, ...after]);
    result.peer = {
      name: p.name,
      backend: p.backend,
      ms_per_iter: p.msPerIter,
      stylize_ms_after: median(after),
      stylize_ms_around: around,
      ratio: p.msPerIter / around,
    };
  }
  if (values.browser) {
    const b = await runBrowserPeer(h, w, values.weights);
    result.browser = {
      adapter: b.adapter,
      ms_per_iter: b.ms_per_iter,
      first_iteration_ms: b.first_iteration_ms,
      ratio: b.ms_per_iter / msPerIter,
    };
  }
  opt.dispose();
  results.push(result);
  if (values.json) console.log(JSON.stringify(result));
  else printTable(result, topKernels);
}
engine.dispose();

function printTable(r: BenchResult, top: number): void {
  const f = (n: number) => n.toFixed(1);
  const tiles = r.tiles_source === "default" ? "default tiles" : `tiles: ${r.tiles_source}`;
  console.log(
    `\n${r.adapter} — ${r.size[0]}×${r.size[1]}, reference config` +
      (r.regions ? ` with ${r.regions} regions` : "") + `, one iteration (${tiles})`,
  );
  console.log(
    `  ms/iter ${f(r.ms_per_iter)} (median of ${iters} batches, min ${f(r.ms_min)}, ` +
      `max ${f(r.ms_max)}; ${r.timing})`,
  );
  console.log(
    `  ${r.gflop_per_iter.toFixed(2)} GFLOP/iter → ${r.gflops.toFixed(1)} GFLOP/s; ` +
      `first iteration ${f(r.first_iteration_ms)} ms (weights, pipelines, plans)`,
  );
  console.log(
    `  with the losses read back every iteration (as a run): ${f(r.ms_per_iter_readback)} ms/iter`,
  );
  console.log(
    `  pool: ${r.buffers} buffers and ${r.textures} textures, peak ${
      (r.peak_bytes / 1048576).toFixed(1)
    } MiB (${r.bytes_per_pixel.toFixed(0)} B per pixel${
      r.tiles > 1 ? `, ${r.tiles} tiles` : ""
    }; largest buffer ${(r.largest_buffer_bytes / 1048576).toFixed(1)} MiB), ` +
      `${r.allocations_after_first_iteration} allocations after the first iteration`,
  );
  if (r.parts.forward_fire5) {
    const pct = (k: string) => `${((r.shares[k] ?? 0) * 100).toFixed(0)}%`;
    console.log(
      `  forward to fire5 ${f(r.parts.forward_fire5)} ms; loss+gradient ${
        f(r.parts.loss_and_gradient)
      } ms; ` +
        `kernel time: Grams ${pct("gram")}, convolutions ${pct("conv")}, other ${pct("other")}`,
    );
  }
  if (r.peer) {
    console.log(
      `  peer ${r.peer.name} (${r.peer.backend}): ${f(r.peer.ms_per_iter)} ms/iter; stylize ` +
        `${f(r.peer.stylize_ms_after)} ms/iter right after it, ${
          f(r.peer.stylize_ms_around)
        } before and after → stylize is ${r.peer.ratio.toFixed(1)}× faster`,
    );
  }
  if (r.browser) {
    console.log(
      `  Chromium (${r.browser.adapter}): ${f(r.browser.ms_per_iter)} ms/iter beside Deno's ` +
        `${f(r.ms_per_iter)} (${r.browser.ratio.toFixed(2)}×); first iteration ` +
        `${f(r.browser.first_iteration_ms)} ms`,
    );
  }
  if (r.kernels.length) {
    const how = r.profile === "timestamps"
      ? "GPU timestamps, one pass per launch"
      : "per-launch fences, the latency of an empty submission subtracted";
    console.log(
      `  ${"kernel".padEnd(32)} ${"ms".padStart(7)} ${"GFLOP".padStart(7)} GFLOP/s   (${how})`,
    );
    for (const k of r.kernels.slice(0, top)) {
      console.log(
        `  ${k.name.padEnd(32)} ${k.ms.toFixed(2).padStart(7)} ${k.gflop.toFixed(3).padStart(7)} ` +
          `${(k.gflop / k.ms * 1e3).toFixed(2).padStart(7)}`,
      );
    }
  }
}
