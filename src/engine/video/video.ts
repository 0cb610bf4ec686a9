/**
 * Temporally coherent video (Ruder, Dosovitskiy & Brox 2016): the first frame
 * is stylised as a still (coarse to fine); every later frame at the output's
 * size only, for fewer iterations, starting from the previous output warped
 * onto it by the optical flow between the two input frames (the content where
 * the flow is not trusted: src/engine/video/flow.ts) and held close to that
 * warped output by the temporal term where the flow's consistency check holds
 * (src/engine/loss/temporal.ts). The style images' Grams are computed once.
 * A frame is one {@link stylize} run: a lost device, memory limits, masks,
 * original colours (an edge's) work as for stills.
 * @module
 */
import { UserError } from "../errors.ts";
import { Program } from "../gpu/scheduler.ts";
import { resize, toTensor } from "../image/mod.ts";
import type { RgbImage, Tensor } from "../image/types.ts";
import { Scope, view } from "../ops/context.ts";
import {
  checkSchedule,
  planScales,
  type ScheduleOptions,
  type ScheduleResult,
  stylize,
} from "../model/schedule.ts";
import type { Engine } from "../model/stylizer.ts";
import { FrameFlow } from "./flow.ts";

/** Iterations of each frame after the first when none are given (bench/VIDEO.md). */
export const DEFAULT_VIDEO_ITERS = 50;

/** The temporal term's weight w_temp when none is given (bench/VIDEO.md). */
export const DEFAULT_TEMPORAL_WEIGHT = 5;

/** One input frame. */
export interface VideoFrame {
  /** Its name (the output frame's, without extension). */
  name: string;
  image: RgbImage;
}

/**
 * Options of {@link stylizeVideo}: a schedule's, but for the content and the
 * temporal term (`init` is the first frame's starting image).
 */
export interface VideoOptions extends Omit<ScheduleOptions, "content" | "temporal"> {
  /** The frames: how many, and frame k (0-based) when asked, in order. */
  frames: { count: number; read(k: number): Promise<VideoFrame> };
  /** Iterations of every frame after the first, at the output's size (default {@link DEFAULT_VIDEO_ITERS}). */
  videoIters?: number;
  /**
   * The temporal term's weight w_temp (default {@link DEFAULT_TEMPORAL_WEIGHT}; 0: each frame
   * only starts from the last).
   */
  temporalWeight?: number;
  /** Receives each frame's result (preprocessed BGR [1,3,H,W]) and its run. */
  onFrame: (k: number, frame: VideoFrame, x: Tensor, result: ScheduleResult) => Promise<void>;
  /** Called when frame k starts (after its flow, for frames after the first). */
  onFrameStart?: (k: number, frame: VideoFrame) => void;
}

/** What {@link stylizeVideo} returns. */
export interface VideoResult {
  /** Frames written. */
  frames: number;
  /** Whether the run stopped early (aborted, or failed: `failed` says why). */
  stopped: boolean;
  failed?: string;
  /** The engine the run ended on. */
  engine: Engine;
  /** Milliseconds spent on optical flow and warps, all frames together. */
  flowMs: number;
}

/** The flow between consecutive frames of one size, with its warps, on one engine. */
class Motion {
  readonly engine: Engine;
  #ff: FrameFlow;
  #scope: Scope;
  #prevOut: GPUBuffer;
  #omega: GPUBuffer;
  #init: GPUBuffer;
  #warps: Program;

  private constructor(
    engine: Engine,
    scope: Scope,
    ff: FrameFlow,
    bufs: GPUBuffer[],
    warps: Program,
  ) {
    this.engine = engine;
    this.#scope = scope;
    this.#ff = ff;
    [this.#prevOut, this.#omega, this.#init] = bufs;
    this.#warps = warps;
  }

  /** Makes the flow's buffers and programs for h×w frames. */
  static async create(engine: Engine, h: number, w: number): Promise<Motion> {
    const scope = new Scope(engine.ctx.pool);
    try {
      const ff = await FrameFlow.create(engine.ctx, scope, { h, w });
      const bufs = ["prev", "omega", "init"].map((l) => scope.floats(3 * h * w, `video.${l}`));
      const warps = new Program(engine.gpu.device);
      // Bicubic: a bilinear warp blurs each frame's texture (a half-pixel shift is a [½ ½]
      // filter) and the temporal term would hold the next frame to the blur (bench/VIDEO.md).
      const filter = "bicubic";
      await ff.warp(warps, {
        label: "video.omega",
        src: view(bufs[0]),
        out: view(bufs[1]),
        filter,
      });
      await ff.warp(warps, {
        label: "video.init",
        src: view(bufs[0]),
        out: view(bufs[2]),
        fallback: ff.next,
        filter,
      });
      return new Motion(engine, scope, ff, bufs, warps);
    } catch (e) {
      scope.dispose();
      throw e;
    }
  }

  /**
   * The previous output `prevOut` warped onto the frame `next` (from
   * `prev`): ω, the consistency weights c, and the first iterate.
   */
  async warp(
    prev: Tensor,
    next: Tensor,
    prevOut: Tensor,
  ): Promise<{ omega: Tensor; c: Tensor; init: Tensor }> {
    const device = this.engine.gpu.device;
    const { h, w } = this.#ff;
    this.#ff.write(
      device.queue,
      prev.data as Float32Array<ArrayBuffer>,
      next.data as Float32Array<ArrayBuffer>,
    );
    device.queue.writeBuffer(this.#prevOut, 0, new Float32Array(prevOut.data));
    const enc = device.createCommandEncoder();
    this.#ff.program.encode(enc);
    this.#warps.encode(enc);
    device.queue.submit([enc.finish()]);
    const [omega, init, c] = await this.engine.read([
      { buffer: this.#omega, offset: 0, floats: 3 * h * w },
      { buffer: this.#init, offset: 0, floats: 3 * h * w },
      { buffer: this.#ff.weights, offset: 0, floats: h * w },
    ]);
    const image = (data: Float32Array) => ({ shape: [1, 3, h, w], data });
    return { omega: image(omega), init: image(init), c: { shape: [1, 1, h, w], data: c } };
  }

  /** Frees the flow's buffers (nothing to free once its engine is gone with a lost device). */
  dispose(): void {
    if (this.engine.lostMessage === null) this.#scope.dispose();
  }
}

/**
 * The frames after the first: one scale (the output's size, with the
 * weights and style size of the first frame's last scale), `videoIters`
 * iterations (the learning rate dropping at the same fraction of them).
 */
function laterFrames(o: VideoOptions): Partial<ScheduleOptions> {
  const iters = o.videoIters ?? DEFAULT_VIDEO_ITERS;
  return { minSize: o.size, iters, firstIters: iters };
}

/** Stylises a video's frames (see the module doc). */
export async function stylizeVideo(engine: Engine, o: VideoOptions): Promise<VideoResult> {
  if (o.frames.count === 0) throw new UserError("no frames: the video is empty");
  if (!((o.videoIters ?? DEFAULT_VIDEO_ITERS) >= 1)) {
    throw new UserError(`video iterations must be at least 1`);
  }
  const temporalWeight = o.temporalWeight ?? DEFAULT_TEMPORAL_WEIGHT;
  const styleCache = o.styleCache ?? new Map<string, Tensor[]>();
  let motion: Motion | null = null;
  let prev: { content: Tensor; out: Tensor } | null = null;
  let flowMs = 0;
  let size: [number, number] | null = null;
  try {
    for (let k = 0; k < o.frames.count; k++) {
      const frame = await o.frames.read(k);
      const { width, height } = frame.image;
      size ??= [width, height];
      if (width !== size[0] || height !== size[1]) {
        throw new UserError(
          `${frame.name}: ${width}×${height}, but the first frame is ${size[0]}×${size[1]}; ` +
            "every frame must have the same size",
        );
      }
      const base: ScheduleOptions = { ...o, content: frame.image, styleCache };
      // Every frame has the first one's size: one check against the device.
      const last = (k === 0 ? checkSchedule(engine, base) : planScales(base)).at(-1)!;
      let run: ScheduleOptions = base;
      let content: Tensor;
      if (prev) {
        content = toTensor(resize(frame.image, last.w, last.h));
        const t0 = performance.now();
        if (!motion || motion.engine !== engine) {
          motion?.dispose();
          motion = await Motion.create(engine, last.h, last.w);
        }
        let m;
        try {
          m = await motion.warp(prev.content, content, prev.out);
        } catch (e) {
          // A device lost during the flow: once more on a new one, as a frame's run would.
          const lost = engine.lostMessage;
          if (lost === null || !o.recover) throw e;
          engine = await o.recover(lost);
          o.onNotice?.(`${lost}; the flow of ${frame.name} runs again on a new device`);
          motion = await Motion.create(engine, last.h, last.w);
          m = await motion.warp(prev.content, content, prev.out);
        }
        flowMs += performance.now() - t0;
        run = {
          ...base,
          ...laterFrames(o),
          init: m.init,
          temporal: temporalWeight > 0
            ? { weight: temporalWeight, target: m.omega, weights: m.c }
            : undefined,
        };
      } else content = toTensor(resize(frame.image, last.w, last.h));
      o.onFrameStart?.(k, frame);
      const result = await stylize(engine, run);
      engine = result.engine;
      if (result.failed || result.stopped) {
        return { frames: k, stopped: true, failed: result.failed, engine, flowMs };
      }
      await o.onFrame(k, frame, result.x, result);
      prev = { content, out: result.x };
    }
    return { frames: o.frames.count, stopped: false, engine, flowMs };
  } finally {
    motion?.dispose();
  }
}
