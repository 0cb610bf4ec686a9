/**
 * Errors a user can cause (a bad file, a bad flag, missing weights, no GPU
 * adapter). The CLI prints their message on one line and exits with code 2;
 * every other error is an internal one (exit 1).
 */
export class UserError extends Error {
  /** @param message one line naming the problem and, where possible, the fix. */
  constructor(message: string) {
    super(message);
    this.name = "UserError";
  }
}
