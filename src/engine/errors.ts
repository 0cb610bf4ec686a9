/**
 * The settings an engine message may tell the user to change. The engine
 * names them in its own words ("a smaller output size"); each edge adds how
 * its users change them (the CLI its flags, the page its fields).
 */
export type Setting =
  | "size"
  | "weights"
  | "content-weight"
  | "style-weights"
  | "tv-weight"
  | "temporal-weight";

/**
 * Errors a user can cause (a bad file, a bad flag, missing weights, no GPU
 * adapter). The CLI prints their message on one line and exits with code 2;
 * every other error is an internal one (exit 1).
 */
export class UserError extends Error {
  /** The settings the message says to change (for the edge's own hint). */
  readonly settings: readonly Setting[];
  /**
   * @param message one line naming the problem and, where possible, the fix.
   * @param settings the settings the fix changes.
   */
  constructor(message: string, settings: readonly Setting[] = []) {
    super(message);
    this.name = "UserError";
    this.settings = settings;
  }
}

/**
 * A number a user typed (a CLI flag's value, a page field), checked the same
 * way everywhere: finite, an integer with `int`, at least `min` (default 0).
 * @param label what the value is, as the user knows it ("--iters", "Iterations")
 * @throws {UserError} "label: … is not a number" and the like
 */
export function parseNumber(
  label: string,
  v: string,
  opts: { int?: boolean; min?: number } = {},
): number {
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n)) {
    throw new UserError(`${label}: "${v}" is not a number`);
  }
  if (opts.int && !Number.isInteger(n)) throw new UserError(`${label}: "${v}" is not an integer`);
  const min = opts.min ?? 0;
  if (n < min) throw new UserError(`${label}: ${v} must be ${min ? `at least ${min}` : "≥ 0"}`);
  return n;
}
