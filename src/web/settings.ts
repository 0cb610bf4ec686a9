/**
 * The page's settings form as a run's parameters: the CLI's defaults, the
 * CLI's validation, and `strength` multiplying every style-layer weight.
 * Pure: no DOM, so it is tested in Deno.
 * @module
 */
import { parseNumber } from "../engine/errors.ts";
import { DEFAULT_CONFIG, type StyleConfig } from "../engine/model/optimize.ts";
import { DEFAULT_MIN_SIZE, DEFAULT_SIZE, REFERENCE_PIXELS } from "../engine/model/schedule.ts";

/** What a run needs besides the images. */
export interface RunSettings {
  /** Longer side of the output in pixels. */
  size: number;
  /** Longer side of each style image (at the last scale). */
  styleSize: number;
  /** Longer side of the first scale (the CLI's --min-size). */
  minSize: number;
  /** Pixels at which the content and TV weights hold as given (the CLI's --reference-pixels). */
  referencePixels: number;
  /** The optimisation's hyper-parameters (iterations per scale after the first). */
  config: StyleConfig;
}

/** The form's fields, as the inputs hold them (an empty string: the default). */
export interface SettingsForm {
  size: string;
  styleSize: string;
  iters: string;
  strength: string;
  minSize: string;
  lr: string;
  contentWeight: string;
  tvWeight: string;
  referencePixels: string;
}

/** The defaults the form shows: the CLI's (`deno task stylize --help`). */
export const DEFAULT_FORM: SettingsForm = {
  size: String(DEFAULT_SIZE),
  styleSize: "",
  iters: String(DEFAULT_CONFIG.iters),
  strength: "1",
  minSize: String(DEFAULT_MIN_SIZE),
  lr: String(DEFAULT_CONFIG.lr),
  contentWeight: String(DEFAULT_CONFIG.contentWeight),
  tvWeight: String(DEFAULT_CONFIG.tvWeight),
  referencePixels: String(REFERENCE_PIXELS),
};

/** The label each field has in the page, for error messages. */
const LABELS: Record<keyof SettingsForm, string> = {
  size: "Output size",
  styleSize: "Style size",
  iters: "Iterations",
  strength: "Style strength",
  minSize: "First scale",
  lr: "Learning rate",
  contentWeight: "Content weight",
  tvWeight: "TV weight",
  referencePixels: "Reference pixels",
};

/** A field read as a number (its default when empty), checked as the CLI checks it. */
function field(
  form: SettingsForm,
  key: keyof SettingsForm,
  opts: { int?: boolean; min?: number },
): number {
  return parseNumber(LABELS[key], form[key].trim() === "" ? DEFAULT_FORM[key] : form[key], opts);
}

/**
 * Reads the form: sizes and iterations as the CLI's `--size`, `--style-size`
 * (default: the size), `--min-size` (at most the size) and `--iters`; the
 * learning rate drops to a tenth at 90% of each scale's iterations;
 * `strength` multiplies the default style weights; the content and TV
 * weights hold at `--reference-pixels`.
 * @throws {UserError} naming the field when a value is not valid.
 */
export function parseSettings(form: SettingsForm): RunSettings {
  const size = field(form, "size", { int: true, min: 16 });
  const styleSize = form.styleSize.trim() === ""
    ? size
    : field(form, "styleSize", { int: true, min: 16 });
  const iters = field(form, "iters", { int: true, min: 1 });
  const strength = field(form, "strength", {});
  return {
    size,
    styleSize,
    minSize: Math.min(size, field(form, "minSize", { int: true, min: 16 })),
    referencePixels: field(form, "referencePixels", { int: true }),
    config: {
      ...DEFAULT_CONFIG,
      contentWeight: field(form, "contentWeight", {}),
      styleWeights: DEFAULT_CONFIG.styleWeights.map((w) => w * strength),
      tvWeight: field(form, "tvWeight", {}),
      lr: field(form, "lr", {}),
      iters,
      decayAt: Math.round(0.9 * iters),
    },
  };
}
