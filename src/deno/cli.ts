/**
 * The command line: `deno task stylize CONTENT STYLE [STYLE...] [flags]`,
 * `deno task weights`, and the bundled example when run without arguments.
 * The only module that reads Deno.args, prints, and exits.
 * @module
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { UserError } from "../engine/errors.ts";
import { contactSheet, fitLongerSide, fromTensor, resize, toTensor } from "../engine/image/mod.ts";
import { formatForPath, readImage, writeImage } from "./image/mod.ts";
import type { RgbImage } from "../engine/image/types.ts";
import { TAP_NAMES, type TapName } from "../engine/model/squeezenet.ts";
import type { Tensor } from "../engine/model/stylizer.ts";
import type { Pooling } from "../engine/ops/pool.ts";
import {
  DEFAULT_CONFIG,
  type IterationRecord,
  optimize,
  type StyleConfig,
  styleTargets,
} from "../engine/model/optimize.ts";
import { resolveWeights } from "./weights_file.ts";
import { createEngine } from "./stylizer.ts";
import { saveTunedTiles, TILES_FILE_VERSION, tunedTilesPath } from "./tiles_cache.ts";
import { tuneTiles } from "../engine/model/tune.ts";

const USAGE = `stylize — neural style transfer on WebGPU (SqueezeNet 1.1, hand-written WGSL)

Usage:
  deno task stylize CONTENT STYLE [STYLE...] [options]
  deno task stylize              run the bundled example, writes stylized.png
  deno task weights              fetch + verify + cache the weights, print the path
  deno task tune [--size HxW] [--rounds N] [--reset] [-q]
                                 time the kernels' tile shapes on this GPU and
                                 cache the fastest (used by later runs)

Options:
  -o, --output FILE         output image, .png or .jpg (default stylized.png)
      --size N              longer side of the output in pixels (default 512)
      --style-size N        longer side of each style image (default: --size)
      --iters N             Adam iterations (default 200)
      --lr X                learning rate (default 10)
      --lr-decay-at N       iteration where the learning rate drops to a tenth
                            (default 90% of --iters)
      --content-weight X    content loss weight (default 2e-5)
      --style-weights a,b   one weight per style layer (default 5e-2,1.5e-3,3e-5,3e-6)
      --tv-weight X         total-variation weight (default 6e-6)
      --content-layer L     content layer (default fire2)
      --style-layers a,b    style layers (default conv1,fire3,fire4,fire5)
      --style-blend a,b     weights of several style images (default equal)
      --pooling max|avg     pooling layers: each window's maximum (SqueezeNet's)
                            or its mean (default max)
      --init content|random|PATH
                            starting image (default content)
      --seed N              seed of --init random (default 0)
      --save-every N        also write OUT-0050.png ... every N iterations and
                            OUT-stages.png, a contact sheet of the stages
      --trace FILE.json     write the configuration and per-iteration losses
      --weights PATH        SqueezeNet weights (sqz_notop.mat); default:
                            $STYLIZE_WEIGHTS, the cache, then a verified download
  -q, --quiet               no progress output
  -h, --help                this help

Layers: ${TAP_NAMES.join(", ")}`;

const OPTIONS = {
  output: { type: "string", short: "o" },
  size: { type: "string" },
  "style-size": { type: "string" },
  iters: { type: "string" },
  lr: { type: "string" },
  "lr-decay-at": { type: "string" },
  "content-weight": { type: "string" },
  "style-weights": { type: "string" },
  "tv-weight": { type: "string" },
  "content-layer": { type: "string" },
  "style-layers": { type: "string" },
  "style-blend": { type: "string" },
  pooling: { type: "string" },
  init: { type: "string" },
  seed: { type: "string" },
  "save-every": { type: "string" },
  trace: { type: "string" },
  weights: { type: "string" },
  quiet: { type: "boolean", short: "q" },
  help: { type: "boolean", short: "h" },
} as const;

/** The bundled example: small enough to finish in under a minute on a CPU adapter. */
const EXAMPLE = {
  content: new URL("../../examples/chelsea.png", import.meta.url),
  style: new URL("../../examples/hubble_deep_field.jpg", import.meta.url),
  size: 256,
  iters: 100,
};

/** Everything a run needs, parsed and validated. */
export interface RunOptions {
  contents: string;
  styles: string[];
  output: string;
  size: number;
  styleSize: number;
  config: StyleConfig;
  blend?: number[];
  pooling: Pooling;
  init: string;
  seed: number;
  saveEvery: number;
  trace?: string;
  weights?: string;
  quiet: boolean;
}

function number(flag: string, v: string | undefined, opts: { int?: boolean; min?: number }) {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n)) {
    throw new UserError(`--${flag}: "${v}" is not a number`);
  }
  if (opts.int && !Number.isInteger(n)) throw new UserError(`--${flag}: "${v}" is not an integer`);
  if (n < (opts.min ?? 0)) {
    throw new UserError(`--${flag}: ${v} must be ${opts.min ? `at least ${opts.min}` : "≥ 0"}`);
  }
  return n;
}

function list(flag: string, v: string | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  const items = v.split(",").map((s) => s.trim());
  if (items.some((s) => s === "")) throw new UserError(`--${flag}: empty item in "${v}"`);
  return items;
}

function pooling(v: string | undefined): Pooling {
  if (v === undefined) return "max";
  if (v === "max" || v === "avg") return v;
  throw new UserError(`--pooling: "${v}" is not max or avg`);
}

function layer(flag: string, name: string): TapName {
  if (!(TAP_NAMES as readonly string[]).includes(name)) {
    throw new UserError(`--${flag}: unknown layer "${name}" (layers: ${TAP_NAMES.join(", ")})`);
  }
  return name as TapName;
}

/** Joins `--flag -5` into `--flag=-5`, so a negative number reads as a value, not a flag. */
function joinNegativeValues(args: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const name = args[i].startsWith("--") ? args[i].slice(2) : null;
    const opt = name ? (OPTIONS as Record<string, { type: string }>)[name] : undefined;
    if (opt?.type === "string" && /^-\d|^-\.\d/.test(args[i + 1] ?? "")) {
      out.push(`${args[i]}=${args[++i]}`);
    } else out.push(args[i]);
  }
  return out;
}

/** Parses the arguments of a stylize run (not `weights`, not `--help`). */
export function parseRun(args: string[]): RunOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: joinNegativeValues(args),
      options: OPTIONS,
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    throw new UserError(`${(e as Error).message.split("\n")[0]} (see --help)`);
  }
  const v = parsed.values;
  let pos = parsed.positionals;
  let example = false;
  if (pos.length === 0) {
    example = true;
    pos = [EXAMPLE.content.pathname, EXAMPLE.style.pathname];
  }
  if (pos.length < 2) {
    throw new UserError("need a CONTENT image and at least one STYLE image (see --help)");
  }
  const size = number("size", v.size, { int: true, min: 16 }) ?? (example ? EXAMPLE.size : 512);
  const iters = number("iters", v.iters, { int: true, min: 1 }) ??
    (example ? EXAMPLE.iters : DEFAULT_CONFIG.iters);
  const styleLayers = (list("style-layers", v["style-layers"]) ?? DEFAULT_CONFIG.styleLayers)
    .map((l) => layer("style-layers", l));
  const styleWeights =
    list("style-weights", v["style-weights"])?.map((s) => number("style-weights", s, {})!) ??
      (v["style-layers"] === undefined ? DEFAULT_CONFIG.styleWeights : undefined);
  if (!styleWeights || styleWeights.length !== styleLayers.length) {
    throw new UserError(
      `--style-weights: give one weight per style layer (${styleLayers.length}: ${
        styleLayers.join(",")
      })`,
    );
  }
  const blend = list("style-blend", v["style-blend"])?.map((s) => number("style-blend", s, {})!);
  if (blend && blend.length !== pos.length - 1) {
    throw new UserError(
      `--style-blend: ${pos.length - 1} style images need ${pos.length - 1} weights`,
    );
  }
  const output = v.output ?? "stylized.png";
  formatForPath(output);
  const lr = number("lr", v.lr, {}) ?? DEFAULT_CONFIG.lr;
  const decayAt = number("lr-decay-at", v["lr-decay-at"], { int: true }) ?? Math.round(0.9 * iters);
  return {
    contents: pos[0],
    styles: pos.slice(1),
    output,
    size,
    styleSize: number("style-size", v["style-size"], { int: true, min: 16 }) ?? size,
    config: {
      contentLayer: layer("content-layer", v["content-layer"] ?? DEFAULT_CONFIG.contentLayer),
      contentWeight: number("content-weight", v["content-weight"], {}) ??
        DEFAULT_CONFIG.contentWeight,
      styleLayers,
      styleWeights,
      tvWeight: number("tv-weight", v["tv-weight"], {}) ?? DEFAULT_CONFIG.tvWeight,
      lr,
      iters,
      decayAt,
    },
    blend,
    pooling: pooling(v.pooling),
    init: v.init ?? "content",
    seed: number("seed", v.seed, { int: true }) ?? 0,
    saveEvery: number("save-every", v["save-every"], { int: true, min: 1 }) ?? 0,
    trace: v.trace,
    weights: v.weights,
    quiet: v.quiet ?? false,
  };
}

function realOrNull(path: string): string | null {
  try {
    return Deno.realPathSync(path);
  } catch {
    return null;
  }
}

/** Fails early when the output would overwrite an input or its directory is not writable. */
async function checkOutput(out: string, inputs: string[]): Promise<void> {
  const real = realOrNull(out);
  if (real && inputs.some((i) => realOrNull(i) === real)) {
    throw new UserError(`${out}: refusing to overwrite an input image; choose another -o`);
  }
  if (real && Deno.statSync(real).isDirectory) throw new UserError(`${out}: is a directory`);
  const dir = out.includes("/") ? out.slice(0, out.lastIndexOf("/")) || "/" : ".";
  try {
    const probe = await Deno.makeTempFile({ dir, prefix: ".stylize-probe-" });
    await Deno.remove(probe);
  } catch (e) {
    throw new UserError(
      `${out}: output directory ${dir} is not writable (${(e as Error).message.split("\n")[0]})`,
    );
  }
}

/** Seeded uniform noise image over the valid pixel range (mulberry32). */
function randomImage(h: number, w: number, seed: number): Tensor {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const rgb = new Uint8Array(3 * h * w).map(() => Math.floor(next() * 256));
  return toTensor({ width: w, height: h, data: rgb });
}

function withSuffix(path: string, suffix: string): string {
  const dot = path.lastIndexOf(".");
  const slash = path.lastIndexOf("/");
  return dot > slash ? `${path.slice(0, dot)}${suffix}${path.slice(dot)}` : `${path}${suffix}`;
}

/**
 * The rate and ETA of a loop at `done` of `total` iterations, `ms` after it
 * started, the first iteration having ended at `firstMs`: from the
 * iterations after the first (which also compiles the kernels), so neither
 * counts the compilation; null until there is one.
 */
export function loopRate(
  done: number,
  total: number,
  ms: number,
  firstMs: number,
): { rate: number; eta: number } | null {
  if (done < 2 || !(ms > firstMs)) return null;
  const rate = (done - 1) / ((ms - firstMs) / 1000);
  return { rate, eta: (total - done) / rate };
}

/** Progress on stderr: a bar on a terminal, plain lines otherwise. */
function progress(total: number, quiet: boolean) {
  const tty = Deno.stderr.isTerminal();
  const enc = new TextEncoder();
  const every = Math.max(1, Math.round(total / 10));
  let firstMs = 0;
  return (r: IterationRecord) => {
    if (quiet) return;
    const done = r.i + 1;
    if (r.i === 0) firstMs = r.ms;
    const speed = loopRate(done, total, r.ms, firstMs);
    const timing = speed
      ? `${speed.rate.toFixed(2)} it/s  ETA ${speed.eta.toFixed(0)}s`
      : `first iteration ${(r.ms / 1000).toFixed(1)}s (kernels compiled)`;
    const info = `loss ${r.loss.toExponential(3)}  ${timing}`;
    if (tty) {
      const width = 24;
      const fill = Math.round(width * done / total);
      const bar = "#".repeat(fill) + ".".repeat(width - fill);
      Deno.stderr.writeSync(enc.encode(`\r[${bar}] ${done}/${total}  ${info}\x1b[K`));
      if (done === total) Deno.stderr.writeSync(enc.encode("\n"));
    } else if (done % every === 0 || done === total || done === 1) {
      console.error(`iteration ${done}/${total}  ${info}`);
    }
  };
}

/** Runs style transfer as the CLI does; returns the lines to print on stdout. */
export async function run(o: RunOptions, signal?: AbortSignal): Promise<void> {
  const log = (s: string) => o.quiet || console.error(s);
  const initPath = o.init !== "content" && o.init !== "random" ? o.init : null;
  const inputs = [o.contents, ...o.styles, ...(initPath ? [initPath] : [])];
  await checkOutput(o.output, inputs);
  if (o.trace) await checkOutput(o.trace, inputs);
  // Decode first (cheap errors first), check sizes against the GPU, then resize.
  const contentImg = await readImage(o.contents);
  const styleImgs = await Promise.all(o.styles.map((s) => readImage(s)));
  const initImg = initPath ? await readImage(initPath) : null;
  const engine = await createEngine({ weights: o.weights, onProgress: log, pooling: o.pooling });
  // A lost device (driver reset, out of memory) ends the run with its reason, not a hang.
  engine.gpu.lost.then((m) => {
    console.error(`\nstylize: ${m}`);
    Deno.exit(1);
  });
  try {
    const [cw, ch] = fitLongerSide(contentImg.width, contentImg.height, o.size);
    engine.checkImageSize(ch, cw);
    const styleDims = styleImgs.map((s) => fitLongerSide(s.width, s.height, o.styleSize));
    for (const [w, h] of styleDims) engine.checkImageSize(h, w);
    const content = resize(contentImg, cw, ch);
    const styles = styleImgs.map((s, i) => resize(s, ...styleDims[i]));
    let init: Tensor | undefined;
    if (o.init === "random") init = randomImage(ch, cw, o.seed);
    else if (initImg) init = toTensor(resize(initImg, cw, ch));
    log(
      `adapter: ${engine.gpu.adapterName}${engine.gpu.isFallback ? " (software)" : ""}; ` +
        `${content.width}×${content.height}, ${o.config.iters} iterations` +
        (engine.pooling === "avg" ? ", average pooling" : "") +
        (engine.tilesSource === "default" ? "" : `; tuned tiles from ${engine.tilesSource}`),
    );
    const contentT = toTensor(content);
    const targets = await styleTargets(engine, styles.map(toTensor), o.config.styleLayers, o.blend);
    const stages: RgbImage[] = [];
    const t0 = performance.now();
    const result = await optimize(engine, {
      content: contentT,
      styleTargets: targets,
      init,
      config: o.config,
      signal,
      onRecord: progress(o.config.iters, o.quiet),
      snapshotEvery: o.saveEvery || undefined,
      onSnapshot: async (steps, x) => {
        const img = fromTensor(x);
        stages.push(img);
        const path = withSuffix(o.output, `-${String(steps).padStart(4, "0")}`);
        await writeImage(path, img);
        log(`\nwrote ${path}`);
      },
    });
    const final = fromTensor(result.x);
    await writeImage(o.output, final);
    const secs = (performance.now() - t0) / 1000;
    if (result.steps < o.config.iters) log(`\nstopped after ${result.steps} iterations`);
    if (o.saveEvery) {
      const sheet = withSuffix(o.output, "-stages");
      await writeImage(
        sheet,
        contactSheet([content, ...styles, ...stages, final], Math.min(256, content.height)),
      );
      log(`wrote ${sheet}`);
    }
    if (o.trace) {
      const trace = {
        config: {
          content: o.contents,
          styles: o.styles,
          size: [content.height, content.width],
          styleSize: o.styleSize,
          init: o.init,
          seed: o.seed,
          blend: o.blend ?? null,
          pooling: engine.pooling,
          ...o.config,
        },
        adapter: engine.gpu.adapterName,
        iterations: result.records.map((r) => ({
          i: r.i,
          loss: r.loss,
          content: r.content,
          style: r.style,
          tv: r.tv,
          ms: r.ms,
        })),
        steps: result.steps,
        seconds: secs,
        output: o.output,
      };
      const tmp = `${o.trace}.tmp`;
      try {
        await Deno.writeTextFile(tmp, JSON.stringify(trace, null, 2) + "\n");
        await Deno.rename(tmp, o.trace);
      } catch (e) {
        await Deno.remove(tmp).catch(() => {});
        throw new UserError(
          `${o.trace}: cannot write trace (${(e as Error).message.split("\n")[0]})`,
        );
      }
    }
    const last = result.records.at(-1);
    const first = result.records[0];
    const speed = last && first ? loopRate(last.i + 1, last.i + 1, last.ms, first.ms) : null;
    log(
      `wrote ${resolve(o.output)} (${final.width}×${final.height}) in ${secs.toFixed(1)}s` +
        (speed ? `, ${speed.rate.toFixed(2)} it/s after the first iteration` : "") +
        `, final loss ${last?.loss.toExponential(4)}`,
    );
  } finally {
    engine.dispose();
  }
}

/** `stylize tune`: times candidate tiles on this adapter and caches the fastest table. */
async function tune(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      size: { type: "string", default: "192x256" },
      rounds: { type: "string", default: "3" },
      reset: { type: "boolean", default: false },
      weights: { type: "string" },
      quiet: { type: "boolean", short: "q", default: false },
    },
    strict: true,
  });
  const log = (s: string) => values.quiet || console.error(s);
  const m = /^(\d+)x(\d+)$/.exec(values.size);
  if (!m || Number(m[1]) < 32 || Number(m[2]) < 32) {
    throw new UserError(`--size: "${values.size}" is not HxW with both sides at least 32`);
  }
  const rounds = number("rounds", values.rounds, { int: true, min: 1 })!;
  const engine = await createEngine({
    weights: values.weights,
    tilesFile: false,
    onProgress: log,
  });
  try {
    const path = await tunedTilesPath(engine.gpu.adapterKey);
    if (!path) throw new UserError("no cache directory (set STYLIZE_CACHE_DIR or HOME)");
    if (values.reset) {
      await Deno.remove(path).catch((e) => {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      });
      console.log(`removed tuned tiles for ${engine.gpu.adapterName}: ${path}`);
      return 0;
    }
    const [h, w] = [Number(m[1]), Number(m[2])];
    log(`tuning on ${engine.gpu.adapterName} at ${h}×${w}, ${rounds} rounds`);
    const results = await tuneTiles(engine, { h, w, rounds, onProgress: log });
    const tiles: Record<string, unknown> = {};
    for (const r of results) {
      const def = r.times[0].ms;
      const got = r.times.find((t) => t.tile === r.chosen)!.ms;
      console.log(
        `${r.family.padEnd(18)} ${r.changed ? "tuned  " : "default"} ${JSON.stringify(r.chosen)} ` +
          `${got?.toFixed(3)} ms (default ${def?.toFixed(3) ?? "failed"} ms)`,
      );
      if (r.changed) tiles[r.family] = r.chosen;
    }
    await saveTunedTiles(path, {
      version: TILES_FILE_VERSION,
      adapterKey: engine.gpu.adapterKey,
      adapter: engine.gpu.adapterName,
      size: [h, w],
      date: new Date().toISOString(),
      tiles,
    });
    console.log(`wrote ${path}`);
    return 0;
  } finally {
    engine.dispose();
  }
}

/** Entry point: parses `args`, runs, and returns the exit code. */
export async function main(args: string[]): Promise<number> {
  try {
    if (args.includes("--help") || args.includes("-h")) {
      console.log(USAGE);
      return 0;
    }
    if (args[0] === "weights") {
      const { values } = parseArgs({
        args: args.slice(1),
        options: { weights: { type: "string" } },
        strict: true,
      });
      console.log(
        await resolveWeights({ path: values.weights, onProgress: (m) => console.error(m) }),
      );
      return 0;
    }
    if (args[0] === "tune") return await tune(args.slice(1));
    const opts = parseRun(args);
    const abort = new AbortController();
    const onInt = () => {
      if (abort.signal.aborted) Deno.exit(130);
      console.error("\ninterrupted: finishing the current iteration and saving");
      abort.abort();
    };
    Deno.addSignalListener("SIGINT", onInt);
    try {
      await run(opts, abort.signal);
    } finally {
      Deno.removeSignalListener("SIGINT", onInt);
    }
    return 0;
  } catch (e) {
    if (e instanceof UserError) {
      console.error(`stylize: ${e.message}`);
      return 2;
    }
    if (e instanceof TypeError && /Unknown option|Unexpected argument/.test(e.message)) {
      console.error(`stylize: ${e.message.split("\n")[0]}`);
      return 2;
    }
    console.error("stylize: internal error:", e);
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
