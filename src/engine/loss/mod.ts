/**
 * The loss terms a plan can compose, in the order they are asked at each
 * step, and the loss spec they read between them. A new term is one module
 * (its spec, checks, targets, launches, tiles) and one entry here.
 * @module
 */
import { UserError } from "../errors.ts";
import { type Dims, layerDims } from "../model/squeezenet.ts";
import type { TileGrid } from "../model/tiles.ts";
import { checkContent, contentKey, type ContentSpec, createContent } from "./content.ts";
import {
  checkGuidedStyle,
  createGuidedStyle,
  guidedStyleKey,
  type GuidedStyleSpec,
} from "./guided_style.ts";
import { checkStyle, createStyle, styleKey, type StyleSpec } from "./style.ts";
import { checkTv, createTv, tvKey, type TvSpec } from "./tv.ts";
import { checkTemporal, createTemporal, temporalKey, type TemporalSpec } from "./temporal.ts";
import type { LossTerm, Recorder } from "./term.ts";

/** What a loss-and-gradient minimises: every registered term's part. */
export type LossSpec = ContentSpec & StyleSpec & GuidedStyleSpec & TvSpec & TemporalSpec;

/** A loss term's module, as the registry holds it. */
export interface TermModule<S> {
  /** Validates the term's part of a spec for an h×w image; returns the layers it reads. */
  check(spec: S, dims: Dims[], h: number, w: number): number[];
  /** What of the spec the recorded program depends on (null: the term is absent). */
  key(spec: S): unknown;
  /** The term of a plan over `grid`, or null when the spec does not ask for it. */
  create(r: Recorder, grid: TileGrid, spec: S): LossTerm<S> | null;
}

/** The registered terms, in the order they are recorded at a layer. */
export const TERMS: readonly TermModule<LossSpec>[] = [
  { check: checkContent, key: contentKey, create: createContent },
  { check: checkStyle, key: styleKey, create: createStyle },
  { check: checkGuidedStyle, key: guidedStyleKey, create: createGuidedStyle },
  { check: checkTv, key: tvKey, create: createTv },
  { check: checkTemporal, key: temporalKey, create: createTemporal },
];

/**
 * Validates a spec for an h×w image (the layers must exist there); returns
 * the deepest layer index any term reads (0 at least: conv1 always runs).
 * @throws {UserError} naming what is wrong
 */
export function checkSpec(h: number, w: number, spec: LossSpec): number {
  if (!spec.styleTargets && !spec.regions) {
    throw new UserError("a loss needs style targets or regions");
  }
  const dims = layerDims(h, w);
  const layers = TERMS.flatMap((t) => t.check(spec, dims, h, w));
  return Math.max(0, ...layers);
}

/** The key of what a spec's recorded program depends on. */
export function specKey(spec: LossSpec): string {
  return JSON.stringify(TERMS.map((t) => t.key(spec)));
}

/** The terms a spec asks for, made for a plan over `grid`. */
export function createTerms(r: Recorder, grid: TileGrid, spec: LossSpec): LossTerm<LossSpec>[] {
  return TERMS.flatMap((t) => t.create(r, grid, spec) ?? []);
}
