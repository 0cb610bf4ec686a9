/**
 * One style-transfer run in the page, assembled as the CLI assembles it:
 * sizes by the longer side, checked against the adapter before any resizing,
 * the CLI's resize, blended Gram targets, then the optimisation loop with a
 * preview every few iterations.
 * @module
 */
import { fitLongerSide, fromTensor, resize, toTensor } from "../engine/image/mod.ts";
import type { RgbImage } from "../engine/image/types.ts";
import { type IterationRecord, optimize, styleTargets } from "../engine/model/optimize.ts";
import type { Engine } from "../engine/model/stylizer.ts";
import type { RunSettings } from "./settings.ts";

/** Iterations between two previews. */
export const PREVIEW_EVERY = 5;

/** What {@link stylize} reports while it runs. */
export interface RunCallbacks {
  /** The content image at the output size, before the first iteration. */
  onStart?: (content: RgbImage) => void;
  /** Each iteration's losses, in order. */
  onRecord?: (r: IterationRecord) => void;
  /** The image after `steps` iterations, every {@link PREVIEW_EVERY}. */
  onPreview?: (steps: number, image: RgbImage) => void;
  /** Stops after the current iteration when aborted. */
  signal?: AbortSignal;
}

/** What a run ends with. */
export interface RunResult {
  /** The final image (after the last step done). */
  image: RgbImage;
  /** Iterations done (fewer than asked when stopped). */
  steps: number;
  /** One record per iteration. */
  records: IterationRecord[];
}

/**
 * Stylizes `content` with `styles` on `engine`.
 * @throws {UserError} when an image is too large for the adapter or too small for the network
 */
export async function stylize(
  engine: Engine,
  content: RgbImage,
  styles: RgbImage[],
  settings: RunSettings,
  callbacks: RunCallbacks = {},
): Promise<RunResult> {
  const [cw, ch] = fitLongerSide(content.width, content.height, settings.size);
  engine.checkImageSize(ch, cw);
  const styleDims = styles.map((s) => fitLongerSide(s.width, s.height, settings.styleSize));
  for (const [w, h] of styleDims) engine.checkImageSize(h, w);
  const contentImg = resize(content, cw, ch);
  callbacks.onStart?.(contentImg);
  const styleTensors = styles.map((s, i) => toTensor(resize(s, ...styleDims[i])));
  const { config } = settings;
  const targets = await styleTargets(engine, styleTensors, config.styleLayers);
  const result = await optimize(engine, {
    content: toTensor(contentImg),
    styleTargets: targets,
    config,
    signal: callbacks.signal,
    onRecord: callbacks.onRecord,
    snapshotEvery: callbacks.onPreview ? PREVIEW_EVERY : undefined,
    onSnapshot: (steps, x) => callbacks.onPreview?.(steps, fromTensor(x)),
  });
  return {
    image: fromTensor(result.x),
    steps: result.steps,
    records: result.records,
  };
}
