/**
 * The command line: `deno task stylize CONTENT STYLE [STYLE...] [flags]`,
 * `deno task weights`, and the bundled example when run without arguments.
 * The only module that reads Deno.args, prints, and exits.
 * @module
 */
import { parseArgs } from "node:util";
import { parseNumber, type Setting, UserError } from "../engine/errors.ts";
import { parseBytes } from "../engine/gpu/faults.ts";
import { TAP_NAMES, type TapName } from "../engine/model/squeezenet.ts";
import type { Pooling } from "../engine/ops/pool.ts";
import { DEFAULT_CONFIG } from "../engine/model/optimize.ts";
import { DEFAULT_MIN_SIZE, DEFAULT_SIZE, REFERENCE_PIXELS } from "../engine/model/schedule.ts";
import { tuneTiles } from "../engine/model/tune.ts";
import { formatForPath } from "./image/mod.ts";
import type { RunRecord } from "../engine/model/run_record.ts";
import { run, type RunOptions } from "./run.ts";
import { readSettingsPng, recordFlags, settingsFromArg } from "./settings_png.ts";
import { runBatch } from "./batch.ts";
import { DEFAULT_FPS, runVideo } from "./video.ts";
import { DEFAULT_TEMPORAL_WEIGHT, DEFAULT_VIDEO_ITERS } from "../engine/video/video.ts";
import { resolveWeights } from "./weights_file.ts";
import { createEngine } from "./stylizer.ts";
import { saveTunedTiles, TILES_FILE_VERSION, tunedTilesPath } from "./tiles_cache.ts";

const USAGE = `stylize — neural style transfer on WebGPU (SqueezeNet 1.1, hand-written WGSL)

Usage:
  deno task stylize CONTENT STYLE [STYLE...] [options]
  deno task stylize --batch IN_DIR STYLE [STYLE...] -o OUT_DIR [options]
                                 every PNG/JPEG in IN_DIR into OUT_DIR/<name>.png
  deno task stylize --video IN STYLE [STYLE...] -o OUT [options]
                                 IN a folder of frames or (with ffmpeg) a video
                                 file; OUT a folder of PNG frames or a video file
  deno task stylize              run the bundled example (Chelsea the cat in the
                                 style of The Starry Night, 384 px, 100 iterations
                                 per scale, TV weight 3e-5), writes stylized.png
  deno task weights              fetch + verify + cache the weights, print the path
  deno task tune [--size HxW] [--rounds N] [--reset] [-q]
                                 time the kernels' tile shapes on this GPU and
                                 cache the fastest (used by later runs)

Options:
  -o, --output FILE         output image, .png or .jpg (default stylized.png)
      --size N              longer side of the output in pixels (default 512; any
                            size the machine's memory holds: large images are
                            split into tiles)
      --style-size N        longer side of each style image at the last scale
                            (default: --size)
      --min-size N          longer side of the first scale (default 256, or --size
                            when smaller); scales grow by √2 up to --size, each
                            starting from the last one's result
      --iters N             Adam iterations per scale (default 200)
      --first-iters N       iterations of the first scale (default 2 × --iters
                            with several scales)
      --lr X                learning rate (default 10)
      --lr-decay-at N       iteration of each scale where the learning rate drops
                            to a tenth (default 90% of --iters)
      --content-weight X    content loss weight (default 2e-5)
      --style-weights a,b   one weight per style layer (default 5e-2,1.5e-3,3e-5,3e-6)
      --strength X          multiplies every style weight (default 1)
      --tv-weight X         total-variation weight (default 6e-6)
      --reference-pixels N  the content and TV weights hold as given at N pixels
                            and scale by N/(H·W) (default 49152, the reference
                            configuration's 192×256; 0: plain sums)
      --original-colors     keep the content's colours (luminance transfer)
      --avg-decay D         iterate averaging, D in [0, 1): the image written is
                            the bias-corrected average of the iterates (default
                            0: off)
      --content-layer L     content layer (default fire2)
      --style-layers a,b    style layers (default conv1,fire3,fire4,fire5)
      --pooling max|avg     pooling layers: each window's maximum (SqueezeNet's)
                            or its mean (default max)
      --style-blend a,b     weights of several style images (default equal)
      --style-masks A,B     spatial control: one mask image per style image, in
                            order; each style goes where its mask is light (its
                            luminance, 0..1, soft edges allowed); pixels no mask
                            covers get content and TV only
      --init content|random|PATH
                            starting image (default content)
      --seed N              seed of --init random (default 0)
      --save-every N        also write OUT-0050.png ... every N iterations (per
                            scale: OUT-s2-0050.png ...) and OUT-stages.png, a
                            contact sheet of the stages
      --trace FILE.json     write the configuration and per-iteration losses
      --max-gpu-memory SIZE the most GPU memory the run may take (e.g. 1.5G, 800M):
                            large outputs are split into more tiles to fit it
                            (default: no cap; out of memory, the run retries
                            with smaller tiles by itself)
      --settings-from FILE.png
                            the settings of a PNG written by stylize (the CLI
                            or the page keep them in it); flags given here
                            override them, and without CONTENT STYLE its
                            content and style names are used
      --weights PATH        SqueezeNet weights (sqz_notop.mat); default:
                            $STYLIZE_WEIGHTS, the cache, then a verified download

Many images (--batch IN_DIR; -o is the output folder, made if missing):
      --overwrite           redo images whose output exists (default: skip them,
                            so an interrupted batch resumes)

Video (--video IN; -o a folder of frames, or a .mp4/.mkv/.mov/.webm/.avi/.gif
file written through ffmpeg; the first frame runs as a still, each later one
starts from the last one warped by the optical flow):
      --video-iters N       iterations of every frame after the first, at the
                            output size (default ${DEFAULT_VIDEO_ITERS})
      --temporal-weight X   weight of the temporal loss that holds each frame to
                            the last one warped (default ${DEFAULT_TEMPORAL_WEIGHT}; 0: off)
      --fps N               frame rate of a video file written from a folder of
                            frames (default ${DEFAULT_FPS}; a video's own otherwise)
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
  pooling: { type: "string" },
  strength: { type: "string" },
  "min-size": { type: "string" },
  "first-iters": { type: "string" },
  "reference-pixels": { type: "string" },
  "original-colors": { type: "boolean" },
  "avg-decay": { type: "string" },
  "content-layer": { type: "string" },
  "style-layers": { type: "string" },
  "style-blend": { type: "string" },
  "style-masks": { type: "string" },
  init: { type: "string" },
  seed: { type: "string" },
  "save-every": { type: "string" },
  trace: { type: "string" },
  "settings-from": { type: "string" },
  weights: { type: "string" },
  "max-gpu-memory": { type: "string" },
  batch: { type: "string" },
  video: { type: "string" },
  overwrite: { type: "boolean" },
  "video-iters": { type: "string" },
  "temporal-weight": { type: "string" },
  fps: { type: "string" },
  quiet: { type: "boolean", short: "q" },
  help: { type: "boolean", short: "h" },
} as const;

/**
 * The bundled example (`deno task stylize` without arguments): Chelsea the
 * cat in the style of The Starry Night, two scales (256 → 384 px), settings
 * chosen by looking at the results (sizes 320–384, strengths 1–4, first
 * scales 128–384, iterate averaging, TV weights): a TV weight five times the
 * default smooths away the fine grid of texture the others leave. 22 s on a
 * 2-core CPU adapter with a warm shader cache.
 */
export const EXAMPLE = {
  content: new URL("../../examples/chelsea.png", import.meta.url),
  style: new URL("../../examples/starry_night.jpg", import.meta.url),
  size: 384,
  iters: 100,
  tvWeight: 3e-5,
};

function pooling(v: string | undefined): Pooling {
  if (v === undefined) return "max";
  if (v === "max" || v === "avg") return v;
  throw new UserError(`--pooling: "${v}" is not max or avg`);
}

function number(flag: string, v: string | undefined, opts: { int?: boolean; min?: number }) {
  return v === undefined ? undefined : parseNumber(`--${flag}`, v, opts);
}

function list(flag: string, v: string | undefined): string[] | undefined {
  if (v === undefined) return undefined;
  const items = v.split(",").map((s) => s.trim());
  if (items.some((s) => s === "")) throw new UserError(`--${flag}: empty item in "${v}"`);
  return items;
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

/**
 * Parses the arguments of a stylize run (not `weights`, not `--help`); the
 * flags of `record` (`--settings-from`'s PNG) stand in for flags not given,
 * and its content and style names for missing CONTENT STYLE.
 */
export function parseRun(args: string[], record?: RunRecord): RunOptions {
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
  const v = { ...(record && recordFlags(record)), ...parsed.values } as typeof parsed.values;
  const mode = checkMode(v);
  let pos = parsed.positionals;
  let example = false;
  if (mode) pos = [(mode === "batch" ? v.batch : v.video)!, ...pos];
  else if (pos.length === 0 && record) pos = [record.content, ...record.styles];
  if (!mode && pos.length === 0) {
    example = true;
    pos = [EXAMPLE.content.pathname, EXAMPLE.style.pathname];
  }
  if (pos.length < 2) {
    throw new UserError(
      mode
        ? `--${mode}: need at least one STYLE image (see --help)`
        : "need a CONTENT image and at least one STYLE image (see --help)",
    );
  }
  const size = number("size", v.size, { int: true, min: 16 }) ??
    (example ? EXAMPLE.size : DEFAULT_SIZE);
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
  const strength = number("strength", v.strength, {}) ?? 1;
  const blend = list("style-blend", v["style-blend"])?.map((s) => number("style-blend", s, {})!);
  if (blend && blend.length !== pos.length - 1) {
    throw new UserError(
      `--style-blend: ${pos.length - 1} style images need ${pos.length - 1} weights`,
    );
  }
  const masks = list("style-masks", v["style-masks"]);
  if (masks && masks.length !== pos.length - 1) {
    throw new UserError(
      `--style-masks: ${pos.length - 1} style image${pos.length > 2 ? "s need" : " needs"} ` +
        `${pos.length - 1} mask${pos.length > 2 ? "s" : ""}, one each; got ${masks.length}`,
    );
  }
  if (masks && blend) {
    throw new UserError(
      "--style-blend and --style-masks: a masked style has its own region, no blend",
    );
  }
  const output = v.output ?? "stylized.png";
  if (!mode) formatForPath(output);
  const lr = number("lr", v.lr, {}) ?? DEFAULT_CONFIG.lr;
  const decayAt = number("lr-decay-at", v["lr-decay-at"], { int: true }) ?? Math.round(0.9 * iters);
  const minSize = Math.min(
    size,
    number("min-size", v["min-size"], { int: true, min: 16 }) ??
      DEFAULT_MIN_SIZE,
  );
  const avgDecay = number("avg-decay", v["avg-decay"], {}) ?? 0;
  if (avgDecay >= 1) throw new UserError(`--avg-decay: ${avgDecay} must be in [0, 1)`);
  return {
    contents: pos[0],
    styles: pos.slice(1),
    output,
    size,
    styleSize: number("style-size", v["style-size"], { int: true, min: 16 }) ?? size,
    minSize,
    firstIters: number("first-iters", v["first-iters"], { int: true, min: 1 }) ??
      (minSize < size ? 2 * iters : iters),
    config: {
      contentLayer: layer("content-layer", v["content-layer"] ?? DEFAULT_CONFIG.contentLayer),
      contentWeight: number("content-weight", v["content-weight"], {}) ??
        DEFAULT_CONFIG.contentWeight,
      styleLayers,
      styleWeights: styleWeights.map((w) => w * strength),
      tvWeight: number("tv-weight", v["tv-weight"], {}) ??
        (example ? EXAMPLE.tvWeight : DEFAULT_CONFIG.tvWeight),
      lr,
      iters,
      decayAt,
    },
    baseStyleWeights: styleWeights,
    strength,
    referencePixels: number("reference-pixels", v["reference-pixels"], { int: true }) ??
      REFERENCE_PIXELS,
    avgDecay,
    originalColors: v["original-colors"] ?? false,
    pooling: pooling(v.pooling),
    blend,
    masks,
    init: v.init ?? "content",
    seed: number("seed", v.seed, { int: true }) ?? 0,
    saveEvery: number("save-every", v["save-every"], { int: true, min: 1 }) ?? 0,
    trace: v.trace,
    weights: v.weights,
    maxGpuMemory: v["max-gpu-memory"] === undefined
      ? undefined
      : parseBytes("--max-gpu-memory", v["max-gpu-memory"]),
    quiet: v.quiet ?? false,
    mode,
    overwrite: v.overwrite ?? false,
    videoIters: number("video-iters", v["video-iters"], { int: true, min: 1 }),
    temporalWeight: number("temporal-weight", v["temporal-weight"], {}),
    fps: number("fps", v.fps, {}),
  };
}

/**
 * Batch or video, from the flags, with the flags that belong to neither
 * refused: a batch or a video needs -o, and takes no --init PATH or
 * --save-every; --overwrite is a batch's, --video-iters, --temporal-weight
 * and --fps a video's.
 */
function checkMode(v: Record<string, string | boolean | undefined>): "batch" | "video" | undefined {
  if (v.batch !== undefined && v.video !== undefined) {
    throw new UserError("--batch and --video: give one");
  }
  const mode = v.batch !== undefined ? "batch" : v.video !== undefined ? "video" : undefined;
  const only = (flags: string[], m: string) => {
    for (const f of flags) {
      if (v[f] !== undefined && mode !== m) throw new UserError(`--${f} goes with --${m}`);
    }
  };
  only(["overwrite"], "batch");
  only(["video-iters", "temporal-weight", "fps"], "video");
  if (!mode) return undefined;
  if (v.output === undefined) {
    throw new UserError(
      `--${mode}: give the output with -o (${
        mode === "batch" ? "a folder" : "a folder of frames or a video file"
      })`,
    );
  }
  if (v["save-every"] !== undefined) {
    throw new UserError(`--save-every is for one image, not --${mode}`);
  }
  const init = v.init;
  if (init !== undefined && init !== "content" && init !== "random") {
    throw new UserError(`--init ${init}: --${mode} starts from content or random, not an image`);
  }
  if (v.fps !== undefined && !(parseNumber("--fps", String(v.fps), {}) > 0)) {
    throw new UserError(`--fps: ${v.fps} must be more than 0`);
  }
  return mode;
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

/** The flags that change each setting an engine message names. */
const FLAGS: Record<Setting, string> = {
  size: "--size",
  weights: "--weights PATH or STYLIZE_WEIGHTS",
  "content-weight": "--content-weight",
  "style-weights": "--style-weights or --strength",
  "tv-weight": "--tv-weight",
  "temporal-weight": "--temporal-weight",
};

/** The CLI's hint after an engine message: the flags of the settings it names. */
export function flagHint(e: UserError): string {
  const flags = [...new Set(e.settings.map((s) => FLAGS[s]))];
  return flags.length ? ` (${flags.join(", ")})` : "";
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
    const from = settingsFromArg(args);
    const opts = parseRun(args, from === undefined ? undefined : await readSettingsPng(from));
    const abort = new AbortController();
    const onInt = () => {
      if (abort.signal.aborted) Deno.exit(130);
      console.error(
        opts.mode
          ? "\ninterrupted: finishing the current iteration (what is in progress is not written)"
          : "\ninterrupted: finishing the current iteration and saving",
      );
      abort.abort();
    };
    Deno.addSignalListener("SIGINT", onInt);
    const fail = (line: string, e?: UserError) =>
      console.error(`stylize: ${line}${e ? flagHint(e) : ""}`);
    try {
      if (opts.mode === "batch") return await runBatch(opts, fail, abort.signal);
      if (opts.mode === "video") return await runVideo(opts, fail, abort.signal);
      await run(opts, abort.signal);
    } finally {
      Deno.removeSignalListener("SIGINT", onInt);
    }
    return 0;
  } catch (e) {
    if (e instanceof UserError) {
      console.error(`stylize: ${e.message}${flagHint(e)}`);
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
