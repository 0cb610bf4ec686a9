/**
 * The messages between the page (main.ts: it draws and handles input) and
 * its worker (worker.ts: the engine, the images' decoding and preparation,
 * the previews' conversion, the PNG). Types only.
 * @module
 */
import type { Setting } from "../engine/errors.ts";
import type { IterationRecord } from "../engine/model/optimize.ts";
import type { RunRecord } from "../engine/model/run_record.ts";
import type { Mask } from "./brush.ts";
import type { ScaleInfo, SizeLimits } from "./run.ts";
import type { RunSettings } from "./settings.ts";

/** What the page asks of the worker. */
export type ToWorker =
  /** Acquire the GPU and load the weights (`base`: the page's URL, where the weights are). */
  | { type: "init"; base: string }
  /** Decode a chosen content image and show it at `size` (and the sizes the GPU holds for it). */
  | { type: "content"; file: File | null; settings: RunSettings | null }
  /** The sizes the GPU holds for the last content (or a 4:3 image) with these settings. */
  | { type: "limits"; settings: RunSettings | null }
  /** Run: decode, stylize, report (`masks`: one per style, the regions; null: none). */
  | { type: "run"; content: File; styles: File[]; settings: RunSettings; masks: Mask[] | null }
  /** Decode a mask file for style `index` (its luminance, at its own size). */
  | { type: "mask"; file: File; index: number }
  /** Stop the run after the current iteration. */
  | { type: "stop" };

/** What the worker tells the page. */
export type FromWorker =
  /** A loading step ("downloading the weights from …"). */
  | { type: "progress"; message: string }
  /** The engine is ready on this adapter. */
  | { type: "ready"; adapter: string }
  /** The engine could not be made; the next run tries again. */
  | { type: "failed"; message: string; user: boolean }
  /** One line for the notices (a device lost and the run resumed, a plan retried in more tiles). */
  | { type: "notice"; message: string }
  /** A mask file decoded for style `index` (null: it could not be, `message` says why). */
  | { type: "mask"; index: number; mask: Mask | null; message?: string }
  /** The chosen content, decoded (null: not an image; the run will say so). */
  | { type: "content"; bitmap: ImageBitmap | null; width: number; height: number }
  /** The output sizes the GPU holds for an image of this shape. */
  | { type: "limits"; width: number; height: number; limits: SizeLimits }
  /** A run started: the content at the output size, and the iterations it will do. */
  | { type: "started"; bitmap: ImageBitmap; total: number }
  /** A scale's plans are built. */
  | { type: "scale"; scale: ScaleInfo }
  /** An iteration's losses (numbered across scales) and the rate so far. */
  | {
    type: "record";
    record: IterationRecord;
    scale: { index: number; count: number };
    rate: string;
  }
  /** The image after `steps` iterations of the current scale. */
  | { type: "preview"; bitmap: ImageBitmap; steps: number }
  /**
   * A run ended (done, stopped, or `failed`: too many lost devices, the last
   * good image): the result, its PNG, the stages strip and its PNG.
   */
  | {
    type: "done";
    failed?: string;
    /** The longest submit timed (ms). */
    longestSubmitMs: number;
    bitmap: ImageBitmap;
    png: Blob;
    stages: ImageBitmap;
    stagesPng: Blob;
    steps: number;
    total: number;
    tiles: number;
    record: RunRecord;
  }
  /** A run failed (`user`: a one-line message for the person, else an internal error). */
  | { type: "error"; message: string; user: boolean; settings?: Setting[] };
