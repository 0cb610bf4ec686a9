/**
 * One stylize run from the command line: the images read, the engine made,
 * the schedule run with progress on stderr, the stages, contact sheet, trace
 * and result written atomically. Prints only through `log`; never exits.
 * @module
 */
import { resolve } from "node:path";
import { UserError } from "../engine/errors.ts";
import { adapterLabel } from "../engine/gpu/device.ts";
import {
  contactSheet,
  fromTensor,
  maskTensor,
  MEAN_BGR,
  originalColors,
  resize,
} from "../engine/image/mod.ts";
import type { RgbImage } from "../engine/image/types.ts";
import { type IterationRecord, loopRate, type StyleConfig } from "../engine/model/optimize.ts";
import {
  checkSchedule,
  type Scale,
  type ScheduleOptions,
  type ScheduleResult,
  stylize,
} from "../engine/model/schedule.ts";
import type { Engine, Tensor } from "../engine/model/stylizer.ts";
import type { Pooling } from "../engine/ops/pool.ts";
import { asciiJson, RECORD_KEYWORD } from "../engine/model/run_record.ts";
import { readImage, writeImage } from "./image/mod.ts";
import { cliRecord } from "./settings_png.ts";
import { createEngine, faultsFromEnv } from "./stylizer.ts";

/** Everything a run needs, parsed and validated. */
export interface RunOptions {
  contents: string;
  styles: string[];
  output: string;
  size: number;
  styleSize: number;
  /** Longer side of the first scale (= size: one scale). */
  minSize: number;
  /** Iterations at the first scale. */
  firstIters: number;
  /** Losses and Adam; `iters` per scale after the first, `decayAt` of the last. */
  config: StyleConfig;
  /** The style weights as given (--style-weights or the defaults), before --strength. */
  baseStyleWeights: number[];
  /** --strength: config.styleWeights are baseStyleWeights × strength. */
  strength: number;
  /** Content and TV weights hold as given at this many pixels (0: plain sums). */
  referencePixels: number;
  /** Iterate averaging's decay (0: off). */
  avgDecay: number;
  /** Keep the content's colours (luminance transfer). */
  originalColors: boolean;
  /** How the network's pooling layers pool. */
  pooling: Pooling;
  blend?: number[];
  /** Spatial control: one mask image per style image. */
  masks?: string[];
  init: string;
  seed: number;
  saveEvery: number;
  trace?: string;
  weights?: string;
  /** The most GPU memory (bytes) the run may hold (`--max-gpu-memory`). */
  maxGpuMemory?: number;
  quiet: boolean;
  /**
   * Many images or a video instead of one image: `contents` is then the
   * input folder (batch) or the folder of frames or video file (video),
   * `output` the output folder or video file (src/deno/batch.ts,
   * src/deno/video.ts).
   */
  mode?: "batch" | "video";
  /** Batch: redo images whose output exists (default: skip them). */
  overwrite?: boolean;
  /** Video: iterations of every frame after the first. */
  videoIters?: number;
  /** Video: the temporal term's weight w_temp. */
  temporalWeight?: number;
  /** Video: frames per second of a video file written from a folder of frames. */
  fps?: number;
}

function realOrNull(path: string): string | null {
  try {
    return Deno.realPathSync(path);
  } catch {
    return null;
  }
}

/** Fails early when the output would overwrite an input or its directory is not writable. */
export async function checkOutput(out: string, inputs: string[]): Promise<void> {
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

/** `path` with `suffix` before its extension. */
export function withSuffix(path: string, suffix: string): string {
  const dot = path.lastIndexOf(".");
  const slash = path.lastIndexOf("/");
  return dot > slash ? `${path.slice(0, dot)}${suffix}${path.slice(dot)}` : `${path}${suffix}`;
}

/** "scale 2/3, 362×272: " before a multi-scale run's lines; nothing with one scale. */
function scaleTag(s: Scale): string {
  return s.count > 1 ? `scale ${s.index + 1}/${s.count}, ${s.w}×${s.h}: ` : "";
}

/** Progress on stderr: a bar on a terminal, plain lines otherwise. */
export function progress(quiet: boolean): (r: IterationRecord, scale: Scale) => void {
  const tty = Deno.stderr.isTerminal();
  const enc = new TextEncoder();
  let firstMs = 0;
  return (r: IterationRecord, scale: Scale) => {
    if (quiet) return;
    const total = scale.iters;
    const every = Math.max(1, Math.round(total / 10));
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
      const line = `\r${scaleTag(scale)}[${bar}] ${done}/${total}  ${info}\x1b[K`;
      Deno.stderr.writeSync(enc.encode(line));
      if (done === total) Deno.stderr.writeSync(enc.encode("\n"));
    } else if (done % every === 0 || done === total || done === 1) {
      console.error(`${scaleTag(scale)}iteration ${done}/${total}  ${info}`);
    }
  };
}

/** Formats bytes as MiB or GiB. */
function bytes(n: number): string {
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`;
}

/** The image a tensor shows, with the content's colours when asked. */
export function shown(x: Tensor, o: RunOptions, content: RgbImage): RgbImage {
  const img = fromTensor(x);
  if (!o.originalColors) return img;
  return originalColors(img, resize(content, img.width, img.height));
}

/** A mask [1,1,H,W] in 0..1 as a gray image tensor (for the contact sheet). */
function maskImage(m: Tensor): Tensor {
  const [, , h, w] = m.shape;
  const data = new Float32Array(3 * h * w);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < h * w; i++) data[c * h * w + i] = 255 * m.data[i] - MEAN_BGR[c];
  }
  return { shape: [1, 3, h, w], data };
}

/** The trace of one image's run: its configuration, scales, iterations and GPU memory. */
export function traceOf(
  o: RunOptions,
  engine: Engine,
  result: ScheduleResult,
  secs: number,
  tiles: number[],
  priorPeak: number,
  output = o.output,
): Record<string, unknown> {
  const last = result.scales.at(-1)!;
  return {
    config: {
      content: o.contents,
      styles: o.styles,
      size: [last.h, last.w],
      styleSize: o.styleSize,
      minSize: o.minSize,
      firstIters: o.firstIters,
      referencePixels: o.referencePixels,
      avgDecay: o.avgDecay,
      originalColors: o.originalColors,
      pooling: engine.pooling,
      init: o.init,
      seed: o.seed,
      blend: o.blend ?? null,
      masks: o.masks ?? null,
      ...o.config,
    },
    adapter: engine.gpu.adapterName,
    scales: result.scales.map((s, k) => ({
      scale: s.index,
      size: [s.h, s.w],
      styleSize: s.styleSize,
      tiles: tiles[k],
      iters: s.iters,
      steps: s.steps,
      startMs: s.startMs,
      // The weights used at this scale (size-invariant ones scaled to it).
      contentWeight: s.config.contentWeight,
      styleWeights: s.config.styleWeights,
      tvWeight: s.config.tvWeight,
      decayAt: s.config.decayAt,
    })),
    iterations: result.scales.flatMap((s) =>
      s.records.map((r) => ({
        scale: s.index,
        i: r.i,
        loss: r.loss,
        content: r.content,
        style: r.style,
        tv: r.tv,
        ...(r.temporal ? { temporal: r.temporal } : {}),
        ms: r.ms,
      }))
    ),
    gpu: {
      peakBytes: Math.max(priorPeak, engine.poolStats.peakBytes),
      largestBufferBytes: engine.poolStats.largestBufferBytes,
      largestBindingBytes: engine.largestBinding,
      maxGpuMemory: o.maxGpuMemory ?? null,
      // The longest submit timed (each awaited alone, on each scale's second
      // iteration), and the submits of an iteration at the last scale.
      longestSubmitMs: Math.max(0, ...result.scales.map((s) => s.longestSubmitMs)),
      submits: result.scales.at(-1)?.submits ?? 0,
      devicesLost: result.losses,
    },
    steps: result.scales.reduce((a, s) => a + s.steps, 0),
    seconds: secs,
    output,
  };
}

/** Writes JSON to `path` atomically (a temporary file, then a rename). */
export async function writeJson(path: string, value: unknown, what = "trace"): Promise<void> {
  const tmp = `${path}.tmp`;
  try {
    await Deno.writeTextFile(tmp, JSON.stringify(value, null, 2) + "\n");
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw new UserError(`${path}: cannot write ${what} (${(e as Error).message.split("\n")[0]})`);
  }
}

/** The style images and masks of a run, decoded. */
export async function readStyles(
  o: RunOptions,
): Promise<{ styles: RgbImage[]; masks?: RgbImage[] }> {
  const styles = await Promise.all(o.styles.map((s) => readImage(s)));
  const masks = o.masks ? await Promise.all(o.masks.map((m) => readImage(m))) : undefined;
  return { styles, masks };
}

/**
 * The engine of a run, made from the run's options, and a new one on a new
 * device after a lost one ({@link EngineHolder.recover}, the schedule's
 * `recover`); the GPU memory peak of the engines given up is kept.
 */
export class EngineHolder {
  /** The engine in use. */
  engine: Engine;
  /** The highest GPU memory peak of the engines given up. */
  priorPeak = 0;
  #options: Parameters<typeof createEngine>[0];

  private constructor(engine: Engine, options: Parameters<typeof createEngine>[0]) {
    this.engine = engine;
    this.#options = options;
  }

  /** Makes the run's engine (weights, device, pipelines). */
  static async open(o: RunOptions, log: (s: string) => void): Promise<EngineHolder> {
    const options = {
      weights: o.weights,
      onProgress: log,
      pooling: o.pooling,
      maxGpuMemory: o.maxGpuMemory,
      faults: faultsFromEnv(),
      onNotice: (m: string) => log(`\n${m}`),
    };
    return new EngineHolder(await createEngine(options), options);
  }

  /** Gives up the engine of a lost device and makes a new one. */
  recover = async (): Promise<Engine> => {
    const old = this.engine;
    this.priorPeak = Math.max(this.priorPeak, old.poolStats.peakBytes);
    try {
      old.dispose();
    } catch { /* its device is gone */ }
    this.engine = await createEngine(this.#options);
    return this.engine;
  };

  /** Frees the engine in use. */
  dispose(): void {
    this.engine.dispose();
  }
}

/**
 * A schedule's options from the run's, but for the content (and the
 * starting image, which the caller gives when it is an image).
 */
export function scheduleBase(
  o: RunOptions,
  inputs: { styles: RgbImage[]; masks?: RgbImage[] },
  holder: EngineHolder,
  log: (s: string) => void,
  signal?: AbortSignal,
): Omit<ScheduleOptions, "content"> {
  return {
    recover: holder.recover,
    onNotice: (m) => log(`\n${m}`),
    styles: inputs.styles,
    blend: o.blend,
    masks: inputs.masks,
    size: o.size,
    styleSize: o.styleSize,
    minSize: o.minSize,
    iters: o.config.iters,
    firstIters: o.firstIters,
    config: o.config,
    referencePixels: o.referencePixels,
    avgDecay: o.avgDecay,
    init: o.init === "random" ? "random" : "content",
    seed: o.seed,
    signal,
    onRecord: progress(o.quiet),
  };
}

/**
 * Logs each scale as it starts (its size, tiles, iterations and the GPU
 * memory so far), the adapter before the first scale of the first run, and
 * collects each scale's tiles into `tiles` (for the trace).
 */
export function scaleLogger(
  holder: EngineHolder,
  log: (s: string) => void,
  tiles: number[],
): (s: Scale, startMs: number) => void {
  let adapterSaid = false;
  return (s, startMs) => {
    const engine = holder.engine;
    const plan = engine.lastLossPlan!;
    tiles.push(plan.tiles);
    const split = plan.tiles > 1 ? ` in ${plan.tiles} tiles` : "";
    const head = adapterSaid ? "" : `adapter: ${adapterLabel(engine.gpu)}` +
      (engine.pooling === "avg" ? ", average pooling" : "") +
      (engine.tilesSource === "default" ? "" : `; tuned tiles from ${engine.tilesSource}`) +
      "\n";
    adapterSaid = true;
    log(
      `${head}${scaleTag(s) || ""}${s.w}×${s.h}${split}, ${s.iters} iterations; ` +
        `GPU memory ${bytes(engine.poolStats.peakBytes)} at its peak, largest buffer ` +
        `${bytes(engine.poolStats.largestBufferBytes)} (ready in ${(startMs / 1000).toFixed(1)}s)`,
    );
  };
}

/** "N.NN it/s after the first iteration, final loss X" of a run's last scale. */
export function runSummary(result: ScheduleResult): string {
  const lastScale = result.scales.at(-1)!;
  const last = lastScale.records.at(-1);
  const first = lastScale.records[0];
  const speed = last && first ? loopRate(last.i + 1, last.i + 1, last.ms, first.ms) : null;
  return (speed ? `${speed.rate.toFixed(2)} it/s after the first iteration, ` : "") +
    `final loss ${last?.loss.toExponential(4)}`;
}

/** Runs style transfer as the CLI does. */
export async function run(o: RunOptions, signal?: AbortSignal): Promise<void> {
  const log = (s: string) => o.quiet || console.error(s);
  const initPath = o.init !== "content" && o.init !== "random" ? o.init : null;
  const inputs = [
    o.contents,
    ...o.styles,
    ...(o.masks ?? []),
    ...(initPath ? [initPath] : []),
  ];
  await checkOutput(o.output, inputs);
  if (o.trace) await checkOutput(o.trace, inputs);
  // Decode first (cheap errors first), check sizes against the GPU, then resize.
  const content = await readImage(o.contents);
  const decoded = await readStyles(o);
  const initImg = initPath ? await readImage(initPath) : null;
  const holder = await EngineHolder.open(o, log);
  try {
    const base = scheduleBase(o, decoded, holder, log, signal);
    const schedule = { ...base, content, init: initImg ?? base.init };
    checkSchedule(holder.engine, schedule);
    const tiles: number[] = [];
    const stages: RgbImage[] = [];
    const t0 = performance.now();
    const result = await stylize(holder.engine, {
      ...schedule,
      onScale: scaleLogger(holder, log, tiles),
      snapshotEvery: o.saveEvery || undefined,
      onSnapshot: async (s, steps, x) => {
        const img = shown(x, o, content);
        stages.push(img);
        const tag = s.count > 1 ? `-s${s.index + 1}` : "";
        const path = withSuffix(o.output, `${tag}-${String(steps).padStart(4, "0")}`);
        await writeImage(path, img);
        log(`\nwrote ${path}`);
      },
    });
    holder.engine = result.engine;
    const finalImg = shown(result.x, o, content);
    // The PNG carries the settings that made it (--settings-from reads them).
    const record = cliRecord(o, {
      scales: result.scales.map((s) => [s.w, s.h]),
      steps: result.scales.reduce((a, s) => a + s.steps, 0),
    });
    await writeImage(o.output, finalImg, { text: { [RECORD_KEYWORD]: asciiJson(record) } });
    const secs = (performance.now() - t0) / 1000;
    if (result.failed) {
      throw new UserError(`${result.failed}; wrote the last good image to ${o.output}`);
    }
    if (result.stopped) {
      const s = result.scales.at(-1)!;
      log(`\nstopped after ${s.steps} iterations${s.count > 1 ? ` of scale ${s.index + 1}` : ""}`);
    }
    if (o.saveEvery) {
      const sheet = withSuffix(o.output, "-stages");
      const first = resize(content, finalImg.width, finalImg.height);
      // Each style, and with masks the region it was given (as the loss saw it).
      const shownMasks = (decoded.masks ?? []).map((m) =>
        fromTensor(maskImage(maskTensor(m, finalImg.width, finalImg.height)))
      );
      const inputs = decoded.styles.flatMap((s, k) => shownMasks[k] ? [s, shownMasks[k]] : [s]);
      await writeImage(
        sheet,
        contactSheet([first, ...inputs, ...stages, finalImg], Math.min(256, finalImg.height)),
      );
      log(`wrote ${sheet}`);
    }
    if (o.trace) {
      const trace = traceOf(o, holder.engine, result, secs, tiles, holder.priorPeak);
      await writeJson(o.trace, trace);
    }
    log(
      `wrote ${resolve(o.output)} (${finalImg.width}×${finalImg.height}) in ${secs.toFixed(1)}s, ` +
        runSummary(result),
    );
  } finally {
    holder.dispose();
  }
}
