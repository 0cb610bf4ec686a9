/**
 * The `#status` element, the tests' contract: `data-state` is `idle`,
 * `running`, `done` or `error`, `data-loss` the last loss read back, and the
 * text says what happened.
 * @module
 */

/** The states of the page. */
export type PageState = "idle" | "running" | "done" | "error";

/** The CLI's flag names in engine messages, as the page's labels. */
const FLAG_LABELS: [RegExp, string][] = [
  [/use a smaller --size\b/g, "choose a smaller output size"],
  [/--style-size\b/g, "the style size"],
  [/--size\b/g, "the output size"],
  [/--style-weights or --strength\b/g, "the style strength"],
  [/--strength\b/g, "the style strength"],
  [/--content-weight\b/g, "the content weight"],
  [/--tv-weight\b/g, "the TV weight"],
  [/--style-weights\b/g, "the style strength"],
];

/** A message of the engine with its CLI flag names replaced by the page's labels. */
export function pageMessage(message: string): string {
  return FLAG_LABELS.reduce((m, [re, label]) => m.replace(re, label), message);
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
