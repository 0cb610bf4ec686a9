/**
 * One style-transfer run in the page's worker: the CLI's schedule
 * (src/engine/model/schedule.ts: coarse to fine, size-invariant weights), its
 * sizes checked against the adapter before any resizing, with a preview every
 * few iterations, the stages for the stages strip, the regions' masks
 * (spatial control), a lost device replaced and the run resumed, and what
 * size the adapter can hold. The one module of the page that calls the
 * engine's schedule.
 * @module
 */
import {
  contactSheet,
  fitLongerSide,
  fromTensor,
  originalColors,
  resize,
} from "../engine/image/mod.ts";
import { luminance } from "../engine/image/mask.ts";
import type { RgbImage } from "../engine/image/types.ts";
import { type IterationRecord, READ_BATCH } from "../engine/model/optimize.ts";
import {
  checkSchedule,
  type Scale,
  type ScheduleOptions,
  stylize,
} from "../engine/model/schedule.ts";
import { tapLayerIndex } from "../engine/model/squeezenet.ts";
import type { Engine, Tensor } from "../engine/model/stylizer.ts";
import type { RunSettings } from "./settings.ts";

/**
 * Iterations between two previews: a whole batch of loss read-backs, so a
 * preview (which waits for the GPU's queue) drains nothing the batch did not.
 */
export const PREVIEW_EVERY = READ_BATCH;

/** A scale as the page reports it. */
export interface ScaleInfo {
  index: number;
  count: number;
  w: number;
  h: number;
  iters: number;
  /** Tiles the image is split into at this scale (1: whole). */
  tiles: number;
}

/** What {@link runInPage} takes besides the images and settings, and reports while it runs. */
export interface RunOptions {
  /** Spatial control: one mask image per style (the regions), or none. */
  masks?: RgbImage[];
  /**
   * After a lost device: a new engine (on a new device) to resume the run on
   * from its last saved state; without it a lost device ends the run.
   */
  recover?: (message: string) => Promise<Engine>;
  /** One-line notices (a device lost and the run resumed). */
  onNotice?: (message: string) => void;
  /** The content image at the output size, before the first iteration. */
  onStart?: (content: RgbImage, totalIters: number) => void;
  /** A scale's plans are built (its first iteration is next). */
  onScale?: (scale: ScaleInfo) => void;
  /** Each iteration's losses, in order, numbered across the scales. */
  onRecord?: (r: IterationRecord, scale: { index: number; count: number }) => void;
  /** The image after `steps` iterations of a scale. */
  onPreview?: (steps: number, image: RgbImage) => void;
  /** Stops after the current iteration when aborted. */
  signal?: AbortSignal;
}

/** What a run ends with. */
export interface RunResult {
  /** The final image (after the last step done). */
  image: RgbImage;
  /** Iterations done over all scales (fewer than asked when stopped). */
  steps: number;
  /** Iterations asked for over all scales. */
  total: number;
  /** Each scale run: [width, height]. */
  scales: [number, number][];
  /** The stages kept (every `stageEvery` iterations, and each scale's result but the last). */
  stages: RgbImage[];
  /** The most tiles a scale was split into. */
  tiles: number;
  /**
   * The longest submit timed (ms; the second iteration of each scale's, one
   * by one: each iteration is cut into submits estimated under 200 ms).
   */
  longestSubmitMs: number;
  /** Why the run ended early after lost devices (`image` is then the last good one). */
  failed?: string;
  /** The engine the run ended on (a new one after a lost device). */
  engine: Engine;
}

/** The schedule of a page run. */
function schedule(
  content: RgbImage,
  styles: RgbImage[],
  s: RunSettings,
  masks?: RgbImage[],
): ScheduleOptions {
  return {
    content,
    styles,
    masks,
    size: s.size,
    styleSize: s.styleSize,
    minSize: s.minSize,
    iters: s.config.iters,
    firstIters: s.firstIters,
    config: s.config,
    referencePixels: s.referencePixels,
    avgDecay: s.avgDecay,
    init: s.init,
    seed: s.seed,
  };
}

/** Greatest common divisor. */
function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}

/**
 * Stylizes `content` with `styles` on `engine`, as `deno task stylize` does
 * with the same settings (`--original-colors` on every preview and stage as
 * on the result; `masks` as `--style-masks`).
 * @throws {UserError} when an image is too large for the adapter or too small for the network
 */
export async function runInPage(
  engine: Engine,
  content: RgbImage,
  styles: RgbImage[],
  settings: RunSettings,
  callbacks: RunOptions = {},
): Promise<RunResult> {
  const plan = schedule(content, styles, settings, callbacks.masks);
  const scales = checkSchedule(engine, plan);
  const last = scales.at(-1)!;
  const total = scales.reduce((a, s) => a + s.iters, 0);
  callbacks.onStart?.(resize(content, last.w, last.h), total);
  // The content at each size shown, for --original-colors.
  const resized = new Map<string, RgbImage>();
  const shown = (x: Tensor): RgbImage => {
    const img = fromTensor(x);
    if (!settings.originalColors) return img;
    const key = `${img.width}x${img.height}`;
    if (!resized.has(key)) resized.set(key, resize(content, img.width, img.height));
    return originalColors(img, resized.get(key)!);
  };
  const stages: RgbImage[] = [];
  const isStage = (s: Scale, steps: number) =>
    steps === s.iters || (settings.stageEvery > 0 && steps % settings.stageEvery === 0);
  // Records are numbered across the scales, their times too.
  let offset = 0;
  let msOffset = 0;
  let scaleMs = 0;
  let tiles = 1;
  const recover = callbacks.recover;
  const result = await stylize(engine, {
    ...plan,
    signal: callbacks.signal,
    // The engine of later scales' reports is the new one.
    recover: recover && (async (message) => engine = await recover(message)),
    onNotice: callbacks.onNotice,
    onScale: (s) => {
      offset = scales.slice(0, s.index).reduce((a, x) => a + x.iters, 0);
      msOffset += scaleMs;
      const t = engine.lastLossPlan?.tiles ?? 1;
      tiles = Math.max(tiles, t);
      callbacks.onScale?.({
        index: s.index,
        count: s.count,
        w: s.w,
        h: s.h,
        iters: s.iters,
        tiles: t,
      });
    },
    onRecord: (r, s) => {
      scaleMs = r.ms;
      callbacks.onRecord?.({ ...r, i: offset + r.i, ms: msOffset + r.ms }, s);
    },
    snapshotEvery: settings.stageEvery > 0
      ? gcd(PREVIEW_EVERY, settings.stageEvery)
      : PREVIEW_EVERY,
    onSnapshot: (s, steps, x) => {
      const img = shown(x);
      if (isStage(s, steps)) stages.push(img);
      callbacks.onPreview?.(steps, img);
    },
  });
  return {
    image: shown(result.x),
    steps: result.scales.reduce((a, s) => a + s.steps, 0),
    total,
    scales: result.scales.map((s) => [s.w, s.h]),
    stages,
    tiles,
    longestSubmitMs: Math.max(0, ...result.scales.map((s) => s.longestSubmitMs)),
    failed: result.failed,
    engine: result.engine,
  };
}

/**
 * The CLI's contact sheet of a run (`OUT-stages.png`): the content at the
 * result's size, the styles (each followed by its mask at the result's size,
 * as the loss saw it, when there are masks), the stages and the result, side
 * by side.
 */
export function stagesSheet(
  content: RgbImage,
  styles: RgbImage[],
  stages: RgbImage[],
  result: RgbImage,
  masks?: RgbImage[],
): RgbImage {
  const { width: w, height: h } = result;
  const first = resize(content, w, h);
  const inputs = styles.flatMap((s, k) => masks ? [s, resize(luminance(masks[k]), w, h)] : [s]);
  return contactSheet([first, ...inputs, ...stages, result], Math.min(256, h));
}

/** What output sizes the adapter holds for an image of one shape. */
export interface SizeLimits {
  /** The largest longer side it can run (0: none). */
  maxSize: number;
  /** The smallest longer side that runs in tiles (null: none up to maxSize). */
  tilesFrom: number | null;
}

/** The longest side {@link sizeLimits} looks at. */
const LIMIT_SEARCH_MAX = 1 << 15;

/** The largest n in [lo, hi] with ok(n) (ok monotone: true then false), or lo - 1. */
function largest(lo: number, hi: number, ok: (n: number) => boolean): number {
  let [a, b] = [lo - 1, hi];
  while (a < b) {
    const mid = Math.ceil((a + b) / 2);
    if (ok(mid)) a = mid;
    else b = mid - 1;
  }
  return a;
}

/**
 * The output sizes (longer sides) the engine's tiles and memory budget hold
 * for a `width`×`height` content with `settings`' layers, before any run.
 */
export function sizeLimits(
  engine: Engine,
  width: number,
  height: number,
  settings: RunSettings,
): SizeLimits {
  const cfg = settings.config;
  const upto = Math.max(...[cfg.contentLayer, ...cfg.styleLayers].map(tapLayerIndex));
  const fit = { upto, contentLayer: cfg.contentLayer, avg: settings.avgDecay > 0 };
  const dims = (n: number) => fitLongerSide(width, height, n);
  const holds = (n: number) => {
    const [w, h] = dims(n);
    try {
      engine.checkImageSize(h, w, fit);
      return true;
    } catch {
      return false;
    }
  };
  const maxSize = largest(16, LIMIT_SEARCH_MAX, holds);
  if (maxSize < 16) return { maxSize: 0, tilesFrom: null };
  const whole = (n: number) => {
    const [w, h] = dims(n);
    return engine.gridFor(h, w, upto) === null;
  };
  const wholeUpTo = largest(16, maxSize, whole);
  return { maxSize, tilesFrom: wholeUpTo < maxSize ? wholeUpTo + 1 : null };
}
