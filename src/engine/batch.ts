/**
 * Many images with the same settings on one engine: the device, the
 * weights and the pipelines are made once (the engine's), and each style
 * image's Grams once per size (a shared {@link ScheduleOptions.styleCache}),
 * so every image after the first pays only for its own iterations and
 * plans. Each image is one {@link stylize} run, exactly as a single run of
 * it would be (the same seed, the same pixels). An image that fails — it
 * does not decode, it is too large for the device, its loss stops being
 * finite — is reported through `onFailure` and the batch goes on; a run
 * that cannot go on (the device lost too often, or aborted) ends it.
 *
 * ```ts
 * const r = await stylizeBatch(engine, {
 *   images: { count: 2, name: (k) => names[k], read: (k) => readImage(paths[k]) },
 *   styles, size: 512, iters: 200, config: DEFAULT_CONFIG,
 *   onImage: async (k, name, x) => await save(name, fromTensor(x)),
 *   onFailure: (k, name, e) => console.error(`${name}: ${e.message}`),
 * });
 * ```
 * @module
 */
import { UserError } from "./errors.ts";
import type { RgbImage } from "./image/types.ts";
import {
  checkSchedule,
  type ScheduleOptions,
  type ScheduleResult,
  stylize,
} from "./model/schedule.ts";
import type { Engine, Tensor } from "./model/stylizer.ts";

/** The images of a batch: how many, each one's name, and image k decoded when asked. */
export interface BatchImages {
  count: number;
  /** Image k's name (what failures and progress call it). */
  name(k: number): string;
  /** Decodes image k; a {@link UserError} fails that image only. */
  read(k: number): Promise<RgbImage>;
}

/** Options of {@link stylizeBatch}: a schedule's, but for the content. */
export interface BatchOptions extends Omit<ScheduleOptions, "content"> {
  images: BatchImages;
  /** Receives each image's result (preprocessed BGR [1,3,H,W]), its decoded content and run. */
  onImage: (
    k: number,
    name: string,
    x: Tensor,
    result: ScheduleResult,
    content: RgbImage,
  ) => Promise<void>;
  /** Receives an image that failed (its one-line error: why); the batch goes on. */
  onFailure: (k: number, name: string, error: UserError) => void;
  /** Called when image k starts (decoded and checked against the device). */
  onImageStart?: (k: number, name: string, content: RgbImage) => void;
}

/** What {@link stylizeBatch} returns. */
export interface BatchResult {
  /** Images stylised and handed to `onImage`. */
  done: number;
  /** The images that failed, in order, with why. */
  failures: { name: string; message: string }[];
  /** Whether the batch ended before its last image (aborted, or `failed`). */
  stopped: boolean;
  /** Why the batch could not go on (a run's device lost too often); its image is not handed on. */
  failed?: string;
  /** The engine the batch ended on (a new one after a lost device). */
  engine: Engine;
}

/** Stylises every image of `o.images` in turn (see the module doc). */
export async function stylizeBatch(engine: Engine, o: BatchOptions): Promise<BatchResult> {
  if (o.styles.length === 0) throw new UserError("need at least one style image");
  const styleCache = o.styleCache ?? new Map<string, Tensor[]>();
  const failures: BatchResult["failures"] = [];
  let done = 0;
  const end = (stopped: boolean, failed?: string): BatchResult => ({
    done,
    failures,
    stopped,
    failed,
    engine,
  });
  for (let k = 0; k < o.images.count; k++) {
    if (o.signal?.aborted) return end(true);
    const name = o.images.name(k);
    let result: ScheduleResult;
    let content: RgbImage;
    try {
      content = await o.images.read(k);
      const run: ScheduleOptions = { ...o, content, styleCache };
      checkSchedule(engine, run);
      o.onImageStart?.(k, name, content);
      result = await stylize(engine, run);
    } catch (e) {
      if (!(e instanceof UserError)) throw e;
      failures.push({ name, message: e.message });
      o.onFailure(k, name, e);
      continue;
    }
    engine = result.engine;
    if (result.failed) return end(true, `${name}: ${result.failed}`);
    if (result.stopped) return end(true);
    await o.onImage(k, name, result.x, result, content);
    done++;
  }
  return end(false);
}
