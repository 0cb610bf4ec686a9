/**
 * A whole style transfer as users run it: from decoded images to the result,
 * coarse to fine. The image is optimised at a few scales √2 apart, from
 * `minSize` to `size` (longer sides), each scale starting from the previous
 * one's result upsampled (float bicubic), with Adam restarted and the style
 * targets recomputed from the style images resized by the same factor as
 * the content; the content and TV weights hold as given at
 * `referencePixels` pixels and are scaled by referencePixels / (H·W) at each
 * scale (0: plain sums, as reference.py), so the same flags give the same
 * balance at every size. One scale (`minSize` = `size`) with
 * `referencePixels` 0 is reference.py's `run`, exactly.
 * @module
 */
import { UserError } from "../errors.ts";
import { fitLongerSide, resize, resizePlanes } from "../image/resize.ts";
import { maskTensor } from "../image/mask.ts";
import { MEAN_BGR, toTensor } from "../image/tensor.ts";
import type { RgbImage } from "../image/types.ts";
import { DeviceLostError } from "../gpu/faults.ts";
import {
  blendGrams,
  type IterationRecord,
  LostRun,
  optimize,
  type OptimizeResult,
  type OptimizerState,
  type StyleConfig,
} from "./optimize.ts";
import type { TemporalSpec } from "../loss/temporal.ts";
import { tapLayerIndex } from "./squeezenet.ts";
import type { Engine, Region, Tensor } from "./stylizer.ts";

/** The content and TV weights' reference size: reference.py's configuration, 192×256. */
export const REFERENCE_PIXELS = 192 * 256;

/** The output's longer side when none is given (the CLI's `--size`, the page's size). */
export const DEFAULT_SIZE = 512;

/** The first scale's longer side when none is given (at most the output's). */
export const DEFAULT_MIN_SIZE = 256;

/** One scale of a {@link ScheduleOptions schedule}. */
export interface Scale {
  /** 0-based index, and how many scales there are. */
  index: number;
  count: number;
  /** The image's size at this scale. */
  h: number;
  w: number;
  /** Longer side of the style images at this scale. */
  styleSize: number;
  /** Iterations at this scale. */
  iters: number;
  /** The weights and learning-rate schedule used at this scale. */
  config: StyleConfig;
}

/** Options of {@link stylize}. */
export interface ScheduleOptions {
  /** The content image as decoded (any size; resized at each scale). */
  content: RgbImage;
  /** The style images as decoded. */
  styles: RgbImage[];
  /** Weights of the style images (default equal; not with `masks`). */
  blend?: number[];
  /**
   * Spatial control: one mask image per style image (any size; its
   * luminance, resized to each scale's size, says where that style goes:
   * src/engine/image/mask.ts). Pixels no mask covers get content and TV only.
   */
  masks?: RgbImage[];
  /** Longer side of the result. */
  size: number;
  /** Longer side of the style images at the last scale (default `size`). */
  styleSize?: number;
  /** Longer side at the first scale (default: 256, or `size` when smaller). */
  minSize?: number;
  /** Iterations at each scale after the first. */
  iters: number;
  /** Iterations at the first scale (default: 2 × `iters` with several scales, else `iters`). */
  firstIters?: number;
  /**
   * Losses and Adam's learning rate; `iters` and `decayAt` are per scale:
   * the rate drops to a tenth at the same fraction of each scale
   * (`decayAt` / `iters` of this config; default 0.9).
   */
  config: StyleConfig;
  /** Pixels at which the content and TV weights hold as given (0: plain sums). */
  referencePixels?: number;
  /** Iterate averaging's decay (0 or absent: off); the average restarts at each scale. */
  avgDecay?: number;
  /** The first scale's starting image: the content (default), uniform noise, or an image. */
  init?: "content" | "random" | RgbImage | Tensor;
  /** Seed of the noise of `init: "random"`. */
  seed?: number;
  /** Stops after the current iteration when aborted. */
  signal?: AbortSignal;
  /** Called when a scale starts (after its plans are built). */
  onScale?: (scale: Scale, startMs: number) => void;
  /** Called with each iteration's losses. */
  onRecord?: (r: IterationRecord, scale: Scale) => void;
  /**
   * Iterations (1-based, within a scale) after which `onSnapshot` gets the
   * image; with several scales, each scale's result but the last too.
   */
  snapshotEvery?: number;
  /** Receives the image after `steps` steps of `scale`. */
  onSnapshot?: (scale: Scale, steps: number, x: Tensor) => Promise<void> | void;
  /**
   * After a lost device (its message given): a new engine on a new device
   * (the edge's to make), for the run to resume on from its last saved state.
   * Without it, a lost device ends the run. The optimiser's state is saved
   * at every read-back when it is given.
   */
  recover?: (message: string) => Promise<Engine>;
  /** Receives one-line notices (a device lost and the run resumed). */
  onNotice?: (message: string) => void;
  /**
   * The temporal term of a video frame (src/engine/loss/temporal.ts), at the
   * last scale (ω and c at its size).
   */
  temporal?: TemporalSpec["temporal"];
  /**
   * Each style image's Grams by the size they were computed at, kept from
   * one run to the next of a batch or a video (the same style images).
   */
  styleCache?: Map<string, Tensor[]>;
}

/** A run ends after this many lost devices. */
export const MAX_LOSSES = 3;

/** What {@link stylize} returns. */
export interface ScheduleResult {
  /** The result, preprocessed BGR [1,3,H,W] (the average with `avgDecay`). */
  x: Tensor;
  /** Each scale run, with its records and steps. */
  scales: (Scale & OptimizeResult & { startMs: number })[];
  /** Whether a scale stopped early (aborted, or failed). */
  stopped: boolean;
  /**
   * Why the run ended early when it could not go on (the device lost too
   * often, or no new one to be had); `x` is then the last good image.
   */
  failed?: string;
  /** The engine the run ended on (a new one after a lost device). */
  engine: Engine;
  /** Devices lost during the run (each resumed on a new one, but for a last one that failed it). */
  losses: number;
}

/** The longer sides of the scales: minSize, then ×√2 (rounded) while below size, then size. */
export function scaleSizes(minSize: number, size: number): number[] {
  const out = [Math.min(minSize, size)];
  while (out.at(-1)! < size) {
    const next = Math.round(out.at(-1)! * Math.SQRT2);
    out.push(next >= size || size - next < 0.1 * size ? size : next);
  }
  return out;
}

/** Seeded uniform noise over the valid pixel range (mulberry32), as an 8-bit image. */
export function noiseImage(w: number, h: number, seed: number): RgbImage {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    width: w,
    height: h,
    data: new Uint8Array(3 * h * w).map(() => Math.floor(next() * 256)),
  };
}

/** The scales of a run (sizes, iterations, weights), before any is run. */
export function planScales(o: ScheduleOptions): Scale[] {
  const sizes = scaleSizes(o.minSize ?? Math.min(DEFAULT_MIN_SIZE, o.size), o.size);
  const styleSize = o.styleSize ?? o.size;
  const decayFraction = o.config.iters > 0 ? o.config.decayAt / o.config.iters : 0.9;
  const ref = o.referencePixels ?? REFERENCE_PIXELS;
  return sizes.map((s, index) => {
    const [w, h] = fitLongerSide(o.content.width, o.content.height, s);
    const iters = index === 0
      ? (o.firstIters ?? (sizes.length > 1 ? 2 * o.iters : o.iters))
      : o.iters;
    const k = ref > 0 ? ref / (h * w) : 1;
    return {
      index,
      count: sizes.length,
      h,
      w,
      styleSize: Math.max(16, Math.round(styleSize * s / o.size)),
      iters,
      config: {
        ...o.config,
        contentWeight: o.config.contentWeight * k,
        tvWeight: o.config.tvWeight * k,
        iters,
        decayAt: Math.round(decayFraction * iters),
      },
    };
  });
}

/**
 * The scales of a run ({@link planScales}), each checked against the engine
 * (the largest first, so a size too large is refused before any pixel is
 * resized): the image and every style image at that scale must fit its
 * tiles and memory budget ({@link Engine.checkImageSize}).
 * @throws {UserError} naming the size that does not fit
 */
export function checkSchedule(engine: Engine, o: ScheduleOptions): Scale[] {
  checkMasks(o);
  const scales = planScales(o);
  const cfg = o.config;
  const upto = Math.max(...[cfg.contentLayer, ...cfg.styleLayers].map(tapLayerIndex));
  const fit = {
    upto,
    contentLayer: cfg.contentLayer,
    avg: (o.avgDecay ?? 0) > 0,
    regions: o.masks?.length ?? 0,
  };
  for (const s of [...scales].reverse()) {
    engine.checkImageSize(s.h, s.w, fit);
    for (const st of o.styles) {
      const [w, h] = fitLongerSide(st.width, st.height, s.styleSize);
      engine.checkImageSize(h, w, { upto });
    }
  }
  return scales;
}

/** Masks pair with the style images, one each, and take no blend. */
function checkMasks(o: ScheduleOptions): void {
  if (!o.masks) return;
  if (o.masks.length !== o.styles.length) {
    throw new UserError(
      `${o.styles.length} style image${o.styles.length > 1 ? "s need" : " needs"} ` +
        `${o.styles.length} mask${o.styles.length > 1 ? "s" : ""}, one each; got ${o.masks.length}`,
    );
  }
  if (o.blend) {
    throw new UserError("style masks place each style in its own region: no blend weights");
  }
}

/**
 * The loss's style part at one scale: the blended Gram targets, or with
 * masks each style's region (its mask at the scale's size) and plain Grams.
 */
async function styleAt(
  engine: Engine,
  o: ScheduleOptions,
  scale: Scale,
  styles: Tensor[],
): Promise<{ styleTargets?: Tensor[]; regions?: Region[] }> {
  const layers = scale.config.styleLayers;
  const grams: Tensor[][] = [];
  for (const [k, s] of styles.entries()) {
    const key = `${k}:${s.shape}:${layers}:${engine.pooling}`;
    const hit = o.styleCache?.get(key);
    const g = hit ?? await engine.tapGrams(s, layers);
    o.styleCache?.set(key, g);
    grams.push(g);
  }
  if (o.masks) {
    const masks = o.masks;
    return {
      regions: grams.map((targets, k) => ({
        mask: maskTensor(masks[k], scale.w, scale.h),
        targets,
      })),
    };
  }
  return { styleTargets: blendGrams(grams, o.blend) };
}

/** The first scale's starting image. */
function firstInit(o: ScheduleOptions, scale: Scale, content: Tensor): Tensor {
  if (!o.init || o.init === "content") return content;
  if (o.init === "random") return toTensor(noiseImage(scale.w, scale.h, o.seed ?? 0));
  if ("shape" in o.init) {
    const [, , h, w] = o.init.shape;
    return h === scale.h && w === scale.w ? o.init : upsample(o.init, scale.h, scale.w);
  }
  return toTensor(resize(o.init, scale.w, scale.h));
}

/** A result upsampled to the next scale's size (float bicubic), clamped to valid pixels. */
export function upsample(x: Tensor, h: number, w: number): Tensor {
  const [, , h0, w0] = x.shape;
  const data = resizePlanes(x.data, 3, h0, w0, h, w);
  for (let c = 0; c < 3; c++) {
    const [lo, hi] = [-MEAN_BGR[c], 255 - MEAN_BGR[c]];
    for (let k = c * h * w; k < (c + 1) * h * w; k++) {
      data[k] = Math.min(hi, Math.max(lo, data[k]));
    }
  }
  return { shape: [1, 3, h, w], data };
}

/** The image a saved state shows: x, or the bias-corrected iterate average. */
function stateImage(st: OptimizerState, scale: Scale, avgDecay: number): Tensor {
  const shape = [1, 3, scale.h, scale.w];
  if (!st.avg || st.steps === 0) return { shape, data: st.x };
  const k = 1 / (1 - avgDecay ** st.steps);
  return { shape, data: st.avg.map((v) => v * k) };
}

/** Whether `e` is (or followed) the loss of `engine`'s device; its message if so. */
function lossOf(e: unknown, engine: Engine): string | null {
  if (e instanceof DeviceLostError) return e.message;
  return engine.lostMessage;
}

/** Runs the whole schedule on `engine` (and, after a lost device, on the ones `recover` gives). */
export async function stylize(engine: Engine, o: ScheduleOptions): Promise<ScheduleResult> {
  if (o.styles.length === 0) throw new UserError("need at least one style image");
  checkMasks(o);
  const scales = planScales(o);
  const done: ScheduleResult["scales"] = [];
  let x: Tensor | null = null;
  let losses = 0;
  let offset = 0;
  for (const scale of scales) {
    const t0 = performance.now();
    const content = toTensor(resize(o.content, scale.w, scale.h));
    const styles = o.styles.map((s) => {
      const [w, h] = fitLongerSide(s.width, s.height, scale.styleSize);
      return toTensor(resize(s, w, h));
    });
    const init = x ? upsample(x, scale.h, scale.w) : firstInit(o, scale, content);
    let resume: OptimizerState | undefined;
    let before: IterationRecord[] = [];
    let elapsedMs = 0;
    let startMs = -1;
    let result: OptimizeResult;
    for (;;) {
      try {
        // The previous scale's plans are done with: their memory goes back to the device.
        engine.dropPlans();
        const style = await styleAt(engine, o, scale, styles);
        // So are the style images' (only their Grams are kept).
        engine.dropPlans();
        result = await optimize(engine, {
          content,
          ...style,
          init,
          resume,
          temporal: scale.index === scale.count - 1 ? o.temporal : undefined,
          config: scale.config,
          avgDecay: o.avgDecay,
          signal: o.signal,
          keepState: o.recover !== undefined,
          iterationOffset: offset,
          elapsedMs,
          onReady: () => {
            startMs = performance.now() - t0;
            if (!resume) o.onScale?.(scale, startMs);
          },
          onRecord: (r) => o.onRecord?.(r, scale),
          snapshotEvery: o.snapshotEvery,
          onSnapshot: o.onSnapshot ? (steps, img) => o.onSnapshot!(scale, steps, img) : undefined,
        });
        result.records = [...before, ...result.records];
        break;
      } catch (e) {
        const lost = lossOf(e, engine);
        if (lost === null) throw e;
        losses++;
        const state = e instanceof LostRun ? e.state : null;
        if (state) resume = state;
        if (e instanceof LostRun) {
          before = [...before, ...e.records].filter((r) => r.i < (resume?.steps ?? 0));
          elapsedMs = e.elapsedMs;
        }
        const good = resume ? stateImage(resume, scale, o.avgDecay ?? 0) : (x ?? init);
        const end = (why: string): ScheduleResult => ({
          x: good,
          scales: done,
          stopped: true,
          failed: why,
          engine,
          losses,
        });
        if (!o.recover) return end(lost);
        if (losses >= MAX_LOSSES) return end(`${lost} (${losses} devices lost in this run)`);
        try {
          engine = await o.recover(lost);
        } catch (err) {
          return end(`${lost}; no new GPU device: ${(err as Error).message}`);
        }
        o.onNotice?.(
          `${lost}; resumed on a new device at iteration ${(resume?.steps ?? 0) + 1}` +
            (scale.count > 1 ? ` of scale ${scale.index + 1}` : ""),
        );
      }
    }
    done.push({ ...scale, ...result, startMs });
    offset += scale.iters;
    x = result.x;
    if (result.steps < scale.iters) {
      return { x, scales: done, stopped: true, engine, losses };
    }
    // A scale's result is a stage too (the last scale's is the result itself).
    if (o.onSnapshot && o.snapshotEvery && scale.index < scale.count - 1) {
      await o.onSnapshot(scale, result.steps, x);
    }
  }
  return { x: x!, scales: done, stopped: false, engine, losses };
}
