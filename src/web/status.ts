/**
 * The `#status` element, the tests' contract: `data-state` is `idle`,
 * `running`, `done` or `error`, `data-loss` the last loss read back, and the
 * text says what happened.
 * @module
 */

/** What a missing `navigator.gpu` or adapter tells the visitor. */
export const NO_WEBGPU_HINT = "WebGPU is not available here: no GPU adapter in this browser. " +
  "Use a browser with WebGPU on (Chrome or Edge 113+, Safari 26+, Firefox 141+ on Windows), " +
  "over https or from localhost";

/** The states of the page. */
export type PageState = "idle" | "running" | "done" | "error";

/**
 * An engine message for the page: its CLI flags in parentheses (after the
 * setting's name, "the TV weight (--tv-weight)") left out, and "use a smaller
 * --size" in the page's words.
 */
export function pageMessage(message: string): string {
  return message.replace(/ \((?:--[a-z-]+(?:, | or )?)+\)/g, "")
    .replace(/use a smaller --size\b/g, "choose a smaller output size");
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
