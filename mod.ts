/**
 * stylize: neural style transfer (Gatys et al.) on SqueezeNet 1.1 features,
 * with every op — forward and backward — a hand-written WGSL compute shader
 * run through WebGPU.
 *
 * ```ts
 * import { createStylizer } from "./mod.ts";
 * const s = await createStylizer();
 * const { fire5 } = await s.features(image, ["fire5"]);
 * ```
 *
 * A whole run as the CLI makes it — coarse to fine, size-invariant weights,
 * progress callbacks and an AbortSignal — is {@link stylize} on an engine
 * from {@link createEngine}:
 *
 * ```ts
 * import { createEngine, DEFAULT_CONFIG, fromTensor, readImage, stylize } from "./mod.ts";
 * const engine = await createEngine();
 * const { x } = await stylize(engine, {
 *   content: await readImage("photo.jpg"),
 *   styles: [await readImage("painting.jpg")],
 *   size: 1024,
 *   iters: 100,
 *   config: DEFAULT_CONFIG,
 *   onRecord: (r, scale) => console.log(scale.index, r.i, r.loss),
 * });
 * const image = fromTensor(x); // 8-bit RGB
 * ```
 *
 * Many images on one engine (the style targets made once) are
 * {@link stylizeBatch}; the frames of a video, each after the first started
 * from the last one warped by the optical flow and held to it by a temporal
 * loss, {@link stylizeVideo}.
 *
 * `createStylizer({ pooling: "avg" })` gives a stylizer whose pooling layers
 * average each window (over its elements inside the input) instead of taking
 * its maximum, in every feature, Gram and loss-and-gradient.
 * @module
 */
export {
  Engine,
  type LossAndGradient,
  type LossSpec,
  type LossTerms,
  type Stylizer,
  type Tensor,
} from "./src/engine/model/stylizer.ts";
export { createEngine, createStylizer, type StylizerOptions } from "./src/deno/stylizer.ts";
export { TAP_NAMES, type TapName } from "./src/engine/model/squeezenet.ts";
export type { Pooling } from "./src/engine/ops/pool.ts";
export { UserError } from "./src/engine/errors.ts";
export {
  DEFAULT_CONFIG,
  type IterationRecord,
  optimize,
  type StyleConfig,
  styleTargets,
} from "./src/engine/model/optimize.ts";
export {
  planScales,
  REFERENCE_PIXELS,
  type Scale,
  type ScheduleOptions,
  type ScheduleResult,
  stylize,
} from "./src/engine/model/schedule.ts";
export {
  type BatchImages,
  type BatchOptions,
  type BatchResult,
  stylizeBatch,
} from "./src/engine/batch.ts";
export {
  DEFAULT_TEMPORAL_WEIGHT,
  DEFAULT_VIDEO_ITERS,
  stylizeVideo,
  type VideoFrame,
  type VideoOptions,
  type VideoResult,
} from "./src/engine/video/video.ts";
export {
  fitLongerSide,
  fromTensor,
  originalColors,
  resize,
  type RgbImage,
  toTensor,
} from "./src/engine/image/mod.ts";
export { readImage, writeImage } from "./src/deno/image/mod.ts";
