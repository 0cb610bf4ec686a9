/**
 * The settings a run was made with, as one JSON object that travels inside
 * the PNG it wrote (a `tEXt` chunk with the keyword `stylize`, written by the
 * CLI and the page alike): the content and style names, sizes, scales,
 * iterations, weights, seed, and whether masks were used. Both edges turn a
 * record back into their own settings (the CLI's flags, the page's form).
 * @module
 */
import { UserError } from "../errors.ts";
import { TAP_NAMES, type TapName } from "./squeezenet.ts";

/** The PNG `tEXt` keyword of a {@link RunRecord}. */
export const RECORD_KEYWORD = "stylize";

/** The record's format version. */
export const RECORD_VERSION = 1;

/** A run's settings (see the module's comment). */
export interface RunRecord {
  /** Format version ({@link RECORD_VERSION}). */
  version: number;
  /** The content image's name (the CLI: its path as given; the page: the file's name). */
  content: string;
  /** The style images' names. */
  styles: string[];
  /** Longer side of the output, of the style images at the last scale, of the first scale. */
  size: number;
  styleSize: number;
  minSize: number;
  /** The size [width, height] of each scale run. */
  scales: [number, number][];
  /** Iterations per scale after the first, at the first scale. */
  iters: number;
  firstIters: number;
  /** Iterations done over all scales (fewer than asked when stopped). */
  steps: number;
  lr: number;
  /** Iteration of each scale where the learning rate drops to a tenth (of `iters`). */
  decayAt: number;
  contentLayer: TapName;
  contentWeight: number;
  styleLayers: TapName[];
  /** One weight per style layer, before `strength` multiplies them. */
  styleWeights: number[];
  strength: number;
  tvWeight: number;
  referencePixels: number;
  /** Weights of the style images (null: equal). */
  blend: number[] | null;
  avgDecay: number;
  originalColors: boolean;
  pooling: "max" | "avg";
  /** The first scale's starting image: the content, noise, or an image file (`initImage`). */
  init: "content" | "random" | "image";
  /** The starting image's name when `init` is "image". */
  initImage?: string;
  seed: number;
  /** Whether masks placed the styles (spatial control). */
  masks: boolean;
}

/**
 * JSON of `value` in ASCII only (every other character as a `\u` escape), as
 * a PNG `tEXt` chunk (Latin-1) holds it.
 */
export function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/** The checks of one field's value. */
type Check = (v: unknown) => boolean;

const num: Check = (v) => typeof v === "number" && Number.isFinite(v);
const nonNeg: Check = (v) => num(v) && (v as number) >= 0;
const int = (min: number): Check => (v) => Number.isInteger(v) && (v as number) >= min;
const str: Check = (v) => typeof v === "string";
const bool: Check = (v) => typeof v === "boolean";
const arrayOf = (c: Check, min = 0): Check => (v) =>
  Array.isArray(v) && v.length >= min && v.every(c);
const layer: Check = (v) => (TAP_NAMES as readonly unknown[]).includes(v);
const oneOf = (...xs: unknown[]): Check => (v) => xs.includes(v);

/** Every field's check; optional fields are marked. */
const FIELDS: Record<keyof RunRecord, Check> = {
  version: oneOf(RECORD_VERSION),
  content: str,
  styles: arrayOf(str, 1),
  size: int(16),
  styleSize: int(16),
  minSize: int(16),
  scales: arrayOf(arrayOf(int(1)), 1),
  iters: int(1),
  firstIters: int(1),
  steps: int(0),
  lr: nonNeg,
  decayAt: int(0),
  contentLayer: layer,
  contentWeight: nonNeg,
  styleLayers: arrayOf(layer, 1),
  styleWeights: arrayOf(nonNeg, 1),
  strength: nonNeg,
  tvWeight: nonNeg,
  referencePixels: int(0),
  blend: (v) => v === null || arrayOf(nonNeg, 1)(v),
  avgDecay: (v) => nonNeg(v) && (v as number) < 1,
  originalColors: bool,
  pooling: oneOf("max", "avg"),
  init: oneOf("content", "random", "image"),
  initImage: (v) => v === undefined || str(v),
  seed: (v) => Number.isInteger(v),
  masks: bool,
};

/**
 * Reads a record from its JSON text, every field checked.
 * @param text the JSON (a PNG's `stylize` tEXt chunk)
 * @param name what error messages call its source (the PNG's name)
 * @throws {UserError} one line naming the first field that is missing or not valid
 */
export function parseRunRecord(text: string, name: string): RunRecord {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new UserError(`${name}: its stylize settings are not JSON`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new UserError(`${name}: its stylize settings are not a JSON object`);
  }
  const o = v as Record<string, unknown>;
  for (const [key, check] of Object.entries(FIELDS)) {
    if (!check(o[key])) {
      const what = o[key] === undefined ? "missing" : `not valid (${JSON.stringify(o[key])})`;
      throw new UserError(`${name}: stylize settings: "${key}" is ${what}`);
    }
  }
  const r = o as unknown as RunRecord;
  if (r.styleWeights.length !== r.styleLayers.length) {
    throw new UserError(`${name}: stylize settings: one style weight per style layer`);
  }
  if (r.blend && r.blend.length !== r.styles.length) {
    throw new UserError(`${name}: stylize settings: one blend weight per style image`);
  }
  return r;
}
