/**
 * One style-transfer run in the page: the CLI's schedule (src/engine/model/
 * schedule.ts: coarse to fine, size-invariant weights), its sizes checked
 * against the adapter before any resizing, with a preview every few
 * iterations.
 * @module
 */
import { fromTensor, resize } from "../engine/image/mod.ts";
import type { RgbImage } from "../engine/image/types.ts";
import { type IterationRecord, READ_BATCH } from "../engine/model/optimize.ts";
import { checkSchedule, type ScheduleOptions, stylize } from "../engine/model/schedule.ts";
import type { Engine } from "../engine/model/stylizer.ts";
import type { RunSettings } from "./settings.ts";

/**
 * Iterations between two previews: a whole batch of loss read-backs, so a
 * preview (which waits for the GPU's queue) drains nothing the batch did not.
 */
const PREVIEW_EVERY = READ_BATCH;

/** What {@link runInPage} reports while it runs. */
export interface RunCallbacks {
  /** The content image at the output size, before the first iteration. */
  onStart?: (content: RgbImage, totalIters: number) => void;
  /** Each iteration's losses, in order, numbered across the scales. */
  onRecord?: (r: IterationRecord, scale: { index: number; count: number }) => void;
  /** The image after `steps` iterations of a scale, every {@link PREVIEW_EVERY}. */
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
}

/** The schedule of a page run. */
function schedule(content: RgbImage, styles: RgbImage[], s: RunSettings): ScheduleOptions {
  return {
    content,
    styles,
    size: s.size,
    styleSize: s.styleSize,
    minSize: s.minSize,
    iters: s.config.iters,
    config: s.config,
    referencePixels: s.referencePixels,
  };
}

/**
 * Stylizes `content` with `styles` on `engine`, as `deno task stylize` does
 * with the same settings.
 * @throws {UserError} when an image is too large for the adapter or too small for the network
 */
export async function runInPage(
  engine: Engine,
  content: RgbImage,
  styles: RgbImage[],
  settings: RunSettings,
  callbacks: RunCallbacks = {},
): Promise<RunResult> {
  const plan = schedule(content, styles, settings);
  const scales = checkSchedule(engine, plan);
  const last = scales.at(-1)!;
  const total = scales.reduce((a, s) => a + s.iters, 0);
  callbacks.onStart?.(resize(content, last.w, last.h), total);
  // Records are numbered across the scales, their times too.
  let offset = 0;
  let msOffset = 0;
  let scaleMs = 0;
  const result = await stylize(engine, {
    ...plan,
    signal: callbacks.signal,
    onScale: (s) => {
      offset = scales.slice(0, s.index).reduce((a, x) => a + x.iters, 0);
      msOffset += scaleMs;
    },
    onRecord: (r, s) => {
      scaleMs = r.ms;
      callbacks.onRecord?.({ ...r, i: offset + r.i, ms: msOffset + r.ms }, s);
    },
    snapshotEvery: callbacks.onPreview ? PREVIEW_EVERY : undefined,
    onSnapshot: (_, steps, x) => callbacks.onPreview?.(steps, fromTensor(x)),
  });
  return {
    image: fromTensor(result.x),
    steps: result.scales.reduce((a, s) => a + s.steps, 0),
    total,
  };
}
