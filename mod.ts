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
 * `createStylizer({ pooling: "avg" })` gives a stylizer whose pooling layers
 * average each window (over its elements inside the input) instead of taking
 * its maximum, in every feature, Gram and loss-and-gradient.
 * @module
 */
export {
  type LossAndGradient,
  type LossSpec,
  type LossTerms,
  type Stylizer,
  type Tensor,
} from "./src/engine/model/stylizer.ts";
export { createStylizer, type StylizerOptions } from "./src/deno/stylizer.ts";
export { TAP_NAMES, type TapName } from "./src/engine/model/squeezenet.ts";
export type { Pooling } from "./src/engine/ops/pool.ts";
export { UserError } from "./src/engine/errors.ts";
