/**
 * The page's settings form as a run's parameters: the CLI's defaults, the
 * CLI's validation, and `strength` multiplying every style-layer weight; and
 * the form to and from the settings record a PNG carries
 * (src/engine/model/run_record.ts). Pure: no DOM, so it is tested in Deno.
 * @module
 */
import { parseNumber, UserError } from "../engine/errors.ts";
import { parseBytes } from "../engine/gpu/faults.ts";
import { DEFAULT_CONFIG, type StyleConfig } from "../engine/model/optimize.ts";
import { RECORD_VERSION, type RunRecord } from "../engine/model/run_record.ts";
import { DEFAULT_MIN_SIZE, DEFAULT_SIZE, REFERENCE_PIXELS } from "../engine/model/schedule.ts";

/** What a run needs besides the images. */
export interface RunSettings {
  /** Longer side of the output in pixels. */
  size: number;
  /** Longer side of each style image (at the last scale). */
  styleSize: number;
  /** Longer side of the first scale (the CLI's --min-size). */
  minSize: number;
  /** Iterations of the first scale (the CLI's --first-iters; default 2 × iters with several scales). */
  firstIters?: number;
  /** Pixels at which the content and TV weights hold as given (the CLI's --reference-pixels). */
  referencePixels: number;
  /** The optimisation's hyper-parameters (iterations per scale after the first). */
  config: StyleConfig;
  /** The style-layer weights before `strength` (config.styleWeights are these × strength). */
  styleWeights: number[];
  /** Multiplies every style-layer weight. */
  strength: number;
  /** Iterate averaging's decay (0: off; the CLI's --avg-decay). */
  avgDecay: number;
  /** Keep the content's colours (the CLI's --original-colors). */
  originalColors: boolean;
  /** The first scale's starting image, and the noise's seed. */
  init: "content" | "random";
  seed: number;
  /** Iterations between the stages kept for the stages strip (0: each scale's result only). */
  stageEvery: number;
  /** The most GPU memory (bytes) the engine may hold (the CLI's --max-gpu-memory; absent: none). */
  maxGpuMemory?: number;
}

/** The form's fields, as the inputs hold them (an empty string: the default). */
export interface SettingsForm {
  size: string;
  styleSize: string;
  iters: string;
  strength: string;
  minSize: string;
  firstIters: string;
  lr: string;
  contentWeight: string;
  styleWeights: string;
  tvWeight: string;
  referencePixels: string;
  avgDecay: string;
  /** "true" or "false" (a checkbox). */
  originalColors: string;
  /** "content" or "random" (a select). */
  init: string;
  seed: string;
  stageEvery: string;
  /** A size in bytes as people write it (`1.5G`, `800M`), or empty for none. */
  maxGpuMemory: string;
}

/** The defaults the form shows: the CLI's (`deno task stylize --help`). */
export const DEFAULT_FORM: SettingsForm = {
  size: String(DEFAULT_SIZE),
  styleSize: "",
  iters: String(DEFAULT_CONFIG.iters),
  strength: "1",
  minSize: String(DEFAULT_MIN_SIZE),
  firstIters: "",
  lr: String(DEFAULT_CONFIG.lr),
  contentWeight: String(DEFAULT_CONFIG.contentWeight),
  styleWeights: DEFAULT_CONFIG.styleWeights.join(","),
  tvWeight: String(DEFAULT_CONFIG.tvWeight),
  referencePixels: String(REFERENCE_PIXELS),
  avgDecay: "0",
  originalColors: "false",
  init: "content",
  seed: "0",
  stageEvery: "80",
  maxGpuMemory: "",
};

/** The label each field has in the page, for error messages. */
const LABELS: Record<keyof SettingsForm, string> = {
  size: "Output size",
  styleSize: "Style size",
  iters: "Iterations",
  strength: "Style strength",
  minSize: "First scale",
  firstIters: "First scale's iterations",
  lr: "Learning rate",
  contentWeight: "Content weight",
  styleWeights: "Style weights",
  tvWeight: "TV weight",
  referencePixels: "Reference pixels",
  avgDecay: "Iterate averaging",
  originalColors: "Keep the content's colours",
  init: "Start from",
  seed: "Seed",
  stageEvery: "Stages every",
  maxGpuMemory: "Max GPU memory",
};

/** A field read as a number (its default when empty), checked as the CLI checks it. */
function field(
  form: SettingsForm,
  key: keyof SettingsForm,
  opts: { int?: boolean; min?: number },
): number {
  return parseNumber(LABELS[key], form[key].trim() === "" ? DEFAULT_FORM[key] : form[key], opts);
}

/** The style weights field: one number per default style layer. */
function styleWeights(form: SettingsForm): number[] {
  const text = form.styleWeights.trim() === "" ? DEFAULT_FORM.styleWeights : form.styleWeights;
  const items = text.split(",").map((s) => s.trim());
  const n = DEFAULT_CONFIG.styleLayers.length;
  if (items.length !== n) {
    throw new UserError(
      `${LABELS.styleWeights}: give ${n} weights, one per style layer ` +
        `(${DEFAULT_CONFIG.styleLayers.join(", ")})`,
    );
  }
  return items.map((s) => parseNumber(LABELS.styleWeights, s));
}

/**
 * Reads the form: sizes and iterations as the CLI's `--size`, `--style-size`
 * (default: the size), `--min-size` (at most the size), `--iters` and
 * `--first-iters`; the learning rate drops to a tenth at 90% of each scale's
 * iterations; `strength` multiplies the style weights; the content and TV
 * weights hold at `--reference-pixels`; the GPU memory cap as
 * `--max-gpu-memory`.
 * @throws {UserError} naming the field when a value is not valid.
 */
export function parseSettings(form: SettingsForm): RunSettings {
  const size = field(form, "size", { int: true, min: 16 });
  const styleSize = form.styleSize.trim() === ""
    ? size
    : field(form, "styleSize", { int: true, min: 16 });
  const iters = field(form, "iters", { int: true, min: 1 });
  const strength = field(form, "strength", {});
  const weights = styleWeights(form);
  const avgDecay = field(form, "avgDecay", {});
  if (avgDecay >= 1) throw new UserError(`${LABELS.avgDecay}: ${avgDecay} must be below 1`);
  return {
    size,
    styleSize,
    minSize: Math.min(size, field(form, "minSize", { int: true, min: 16 })),
    firstIters: form.firstIters.trim() === ""
      ? undefined
      : field(form, "firstIters", { int: true, min: 1 }),
    referencePixels: field(form, "referencePixels", { int: true }),
    config: {
      ...DEFAULT_CONFIG,
      contentWeight: field(form, "contentWeight", {}),
      styleWeights: weights.map((w) => w * strength),
      tvWeight: field(form, "tvWeight", {}),
      lr: field(form, "lr", {}),
      iters,
      decayAt: Math.round(0.9 * iters),
    },
    styleWeights: weights,
    strength,
    avgDecay,
    originalColors: form.originalColors === "true",
    init: form.init === "random" ? "random" : "content",
    seed: field(form, "seed", { int: true }),
    stageEvery: field(form, "stageEvery", { int: true }),
    maxGpuMemory: form.maxGpuMemory.trim() === ""
      ? undefined
      : parseBytes(LABELS.maxGpuMemory, form.maxGpuMemory),
  };
}

/** What a finished (or stopped) run adds to its settings for the record. */
export interface RunOutcome {
  /** The content and style files' names. */
  content: string;
  styles: string[];
  /** The size [width, height] of each scale run. */
  scales: [number, number][];
  /** Iterations done over all scales. */
  steps: number;
  /** Whether masks placed the styles (the regions painted or given). */
  masks: boolean;
}

/** The record of a page run (what its PNG carries). */
export function pageRecord(s: RunSettings, outcome: RunOutcome): RunRecord {
  const several = s.minSize < s.size;
  return {
    version: RECORD_VERSION,
    content: outcome.content,
    styles: outcome.styles,
    size: s.size,
    styleSize: s.styleSize,
    minSize: s.minSize,
    scales: outcome.scales,
    iters: s.config.iters,
    firstIters: s.firstIters ?? (several ? 2 * s.config.iters : s.config.iters),
    steps: outcome.steps,
    lr: s.config.lr,
    decayAt: s.config.decayAt,
    contentLayer: s.config.contentLayer,
    contentWeight: s.config.contentWeight,
    styleLayers: s.config.styleLayers,
    styleWeights: s.styleWeights,
    strength: s.strength,
    tvWeight: s.config.tvWeight,
    referencePixels: s.referencePixels,
    blend: null,
    avgDecay: s.avgDecay,
    originalColors: s.originalColors,
    pooling: "max",
    init: s.init,
    seed: s.seed,
    masks: outcome.masks,
  };
}

/** The form a record restores, and the record's settings the page has no control for. */
export interface RestoredForm {
  /** The fields to set (the others keep their values). */
  form: Partial<SettingsForm>;
  /** Settings of the record the page cannot set, named for the status line. */
  ignored: string[];
  /** Whether the record's run had masks (its regions are not in the record: paint or give them). */
  masks: boolean;
}

const same = (a: unknown[], b: unknown[]) => a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * The form fields that give a record's run again (names and images aside:
 * the page asks for the files), and what of it the page cannot set.
 */
export function formFromRecord(r: RunRecord): RestoredForm {
  const several = r.minSize < r.size;
  const ignored: string[] = [];
  if (r.contentLayer !== DEFAULT_CONFIG.contentLayer) {
    ignored.push(`content layer ${r.contentLayer}`);
  }
  if (!same(r.styleLayers, DEFAULT_CONFIG.styleLayers)) {
    ignored.push(`style layers ${r.styleLayers.join(",")}`);
  }
  if (r.pooling !== "max") ignored.push(`${r.pooling} pooling`);
  if (r.blend) ignored.push(`style blend ${r.blend.join(",")}`);
  if (r.init === "image") ignored.push(`starting image ${r.initImage ?? ""}`.trim());
  if (r.decayAt !== Math.round(0.9 * r.iters)) ignored.push(`learning-rate drop at ${r.decayAt}`);
  const form: Partial<SettingsForm> = {
    size: String(r.size),
    styleSize: r.styleSize === r.size ? "" : String(r.styleSize),
    minSize: String(r.minSize),
    iters: String(r.iters),
    firstIters: r.firstIters === (several ? 2 * r.iters : r.iters) ? "" : String(r.firstIters),
    strength: String(r.strength),
    lr: String(r.lr),
    contentWeight: String(r.contentWeight),
    tvWeight: String(r.tvWeight),
    referencePixels: String(r.referencePixels),
    avgDecay: String(r.avgDecay),
    originalColors: String(r.originalColors),
    init: r.init === "random" ? "random" : "content",
    seed: String(r.seed),
  };
  if (r.styleWeights.length === DEFAULT_CONFIG.styleLayers.length) {
    form.styleWeights = r.styleWeights.join(",");
  }
  return { form, ignored, masks: r.masks };
}
