/**
 * The `#status` element, the tests' contract: `data-state` is `idle`,
 * `running`, `done` or `error`, `data-loss` the last loss read back, and the
 * text says what happened.
 * @module
 */

import type { Setting, UserError } from "../engine/errors.ts";

/** What a missing `navigator.gpu` or adapter tells the visitor. */
export const NO_WEBGPU_HINT = "WebGPU is not available here: no GPU adapter in this browser. " +
  "Use a browser with WebGPU on (Chrome or Edge 113+, Safari 26+, Firefox 141+ on Windows), " +
  "over https or from localhost";

/** The states of the page. */
export type PageState = "idle" | "running" | "done" | "error";

/** The page's fields for the settings an engine message names. */
const FIELDS: Record<Setting, string> = {
  size: "Output size",
  weights: "the weights file",
  "content-weight": "Content weight",
  "style-weights": "Style strength",
  "tv-weight": "TV weight",
  "temporal-weight": "Temporal weight",
};

/**
 * An engine message for the page: the engine names what to change in its
 * own words; the page adds the fields that change it.
 */
export function pageMessage(
  e: Pick<UserError, "message"> & { settings?: readonly Setting[] },
): string {
  const fields = [...new Set((e.settings ?? []).map((s) => FIELDS[s]))];
  return fields.length ? `${e.message} (${fields.join(", ")})` : e.message;
}

/** Sets the state and the text (and, when given, the last loss). */
export function setStatus(
  el: HTMLElement,
  state: PageState,
  text: string,
  loss?: number,
): void {
  el.dataset.state = state;
  if (loss !== undefined) el.dataset.loss = String(loss);
  el.textContent = text;
}
