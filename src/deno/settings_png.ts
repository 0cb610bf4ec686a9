/**
 * The CLI's side of the settings a PNG carries (src/engine/model/run_record.ts):
 * the record of a run (written into its PNG), and `--settings-from FILE.png`,
 * which turns a PNG's record back into flag values that the command line's
 * own flags override.
 * @module
 */
import { UserError } from "../engine/errors.ts";
import { readPngText } from "../engine/image/png_text.ts";
import {
  parseRunRecord,
  RECORD_KEYWORD,
  RECORD_VERSION,
  type RunRecord,
} from "../engine/model/run_record.ts";
import type { RunOptions } from "./run.ts";

/** What a finished (or stopped) run adds to its options for the record. */
export interface RunOutcome {
  /** The size [width, height] of each scale run. */
  scales: [number, number][];
  /** Iterations done over all scales. */
  steps: number;
}

/** The record of a CLI run (what its PNG carries). */
export function cliRecord(o: RunOptions, outcome: RunOutcome): RunRecord {
  const init = o.init === "content" || o.init === "random" ? o.init : "image";
  return {
    version: RECORD_VERSION,
    content: o.contents,
    styles: o.styles,
    size: o.size,
    styleSize: o.styleSize,
    minSize: o.minSize,
    scales: outcome.scales,
    iters: o.config.iters,
    firstIters: o.firstIters,
    steps: outcome.steps,
    lr: o.config.lr,
    decayAt: o.config.decayAt,
    contentLayer: o.config.contentLayer,
    contentWeight: o.config.contentWeight,
    styleLayers: o.config.styleLayers,
    styleWeights: o.baseStyleWeights,
    strength: o.strength,
    tvWeight: o.config.tvWeight,
    referencePixels: o.referencePixels,
    blend: o.blend ?? null,
    avgDecay: o.avgDecay,
    originalColors: o.originalColors,
    pooling: o.pooling,
    init,
    ...(init === "image" ? { initImage: o.init } : {}),
    seed: o.seed,
    masks: (o.masks?.length ?? 0) > 0,
  };
}

/** The value of `--settings-from` in `args` (either spelling), if given. */
export function settingsFromArg(args: string[]): string | undefined {
  let path: string | undefined;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--") break;
    if (args[i] === "--settings-from") path = args[++i] ?? "";
    else if (args[i].startsWith("--settings-from=")) path = args[i].slice(16);
  }
  return path;
}

/**
 * The record in a PNG made by stylize (the CLI or the page).
 * @throws {UserError} one line: no such file, not a PNG, no stylize settings in it, or a bad record
 */
export async function readSettingsPng(path: string): Promise<RunRecord> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new UserError(`${path}: no such file`);
    throw new UserError(`${path}: cannot read file (${(e as Error).message.split("\n")[0]})`);
  }
  const text = readPngText(bytes, RECORD_KEYWORD);
  if (text === null) {
    throw new UserError(
      `${path}: no stylize settings in it (--settings-from takes a PNG written by stylize)`,
    );
  }
  return parseRunRecord(text, path);
}

/**
 * A record as the CLI's flag values (option name → value, as `parseArgs`
 * gives them), the flags a run needs to be made again: a learning-rate drop,
 * first-scale iterations and style size only where they are not what the
 * other flags give anyway, so that `--iters` given on the command line still
 * moves them.
 */
export function recordFlags(r: RunRecord): Record<string, string | boolean> {
  const several = r.minSize < r.size;
  const out: Record<string, string | boolean> = {
    size: String(r.size),
    "min-size": String(r.minSize),
    iters: String(r.iters),
    lr: String(r.lr),
    "content-layer": r.contentLayer,
    "content-weight": String(r.contentWeight),
    "style-layers": r.styleLayers.join(","),
    "style-weights": r.styleWeights.join(","),
    strength: String(r.strength),
    "tv-weight": String(r.tvWeight),
    "reference-pixels": String(r.referencePixels),
    "avg-decay": String(r.avgDecay),
    "original-colors": r.originalColors,
    pooling: r.pooling,
    init: r.init === "image" ? r.initImage ?? "content" : r.init,
    seed: String(r.seed),
  };
  if (r.styleSize !== r.size) out["style-size"] = String(r.styleSize);
  if (r.firstIters !== (several ? 2 * r.iters : r.iters)) out["first-iters"] = String(r.firstIters);
  if (r.decayAt !== Math.round(0.9 * r.iters)) out["lr-decay-at"] = String(r.decayAt);
  if (r.blend) out["style-blend"] = r.blend.join(",");
  return out;
}
