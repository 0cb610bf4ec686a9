/**
 * The one place the tests find their data: the SqueezeNet weights (through
 * the CLI's own resolver), the project's committed goldens
 * (`tests/goldens/`, made by `tests/oracle/oracle.py`), the committed test
 * images (`examples/`, public domain or CC0, provenance in
 * `examples/LICENSE.md`), and, where it exists, the shared reference data
 * (`$STYLIZE_SHARED`, else `../shared` beside the repository), which only the
 * cross-check of the goldens needs. Paths come from `fileURLToPath`, so a
 * checkout under a path with spaces or other escaped characters works.
 * @module
 */
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { resolveWeights } from "../src/deno/weights_file.ts";
import {
  sha256Hex,
  WEIGHTS_FILE_NAME,
  WEIGHTS_SHA256,
  WEIGHTS_SIZE,
  WEIGHTS_URL,
} from "../src/engine/model/weights.ts";

/** The repository's root folder. */
export const REPO_ROOT: string = fileURLToPath(new URL("../", import.meta.url));

/** A path inside the repository. */
export function repoPath(...parts: string[]): string {
  return join(REPO_ROOT, ...parts);
}

function isDir(path: string): boolean {
  try {
    return Deno.statSync(path).isDirectory;
  } catch {
    return false;
  }
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/**
 * The shared data folder: `$STYLIZE_SHARED` (relative to the working
 * directory), else `../shared` beside the repository; null when it does not
 * exist. Nothing but the cross-check of the goldens and the weights' local
 * mirror reads it.
 */
export function sharedDir(): string | null {
  const env = Deno.env.get("STYLIZE_SHARED");
  const dir = env ? resolve(env) : resolve(REPO_ROOT, "..", "shared");
  return isDir(dir) ? dir : null;
}

/**
 * The path of one of the project's committed goldens, `tests/goldens/NAME.safetensors`
 * (`forward`, `backward`, `adam20`, `avgpool`, `masked`), made by
 * `tests/oracle/oracle.py`.
 * @throws {Error} if the file is missing (regenerate it with the oracle).
 */
export function golden(name: string): string {
  const path = repoPath("tests", "goldens", `${name}.safetensors`);
  if (!isFile(path)) {
    throw new Error(
      `golden ${path} is missing; regenerate it: /usr/bin/python3 tests/oracle/oracle.py goldens`,
    );
  }
  return path;
}

/** The shared reference's golden `reference/NAME.safetensors`, or null without shared data. */
export function sharedGolden(name: string): string | null {
  const dir = sharedDir();
  if (!dir) return null;
  const path = join(dir, "reference", `${name}.safetensors`);
  return isFile(path) ? path : null;
}

/**
 * The path of a committed test image: `examples/NAME` (`chelsea.png`,
 * `starry_night.jpg`, `hubble_deep_field.jpg`; public domain or CC0, see
 * `examples/LICENSE.md`).
 * @throws {Error} if there is no such image.
 */
export function testImage(name: string): string {
  const path = repoPath("examples", name);
  if (!isFile(path)) throw new Error(`test image ${path} is missing`);
  return path;
}

/** How to give the tests the weights, said once wherever they are missing. */
export const WEIGHTS_HINT = `set STYLIZE_WEIGHTS to a local copy of ${WEIGHTS_FILE_NAME} ` +
  `(${WEIGHTS_SIZE} bytes, sha256 ${WEIGHTS_SHA256}, from ${WEIGHTS_URL}), ` +
  "or put it at ../shared/weights/, or run `deno task weights` once with network access";

/** The local copy to use instead of a download: $STYLIZE_WEIGHTS, else shared's, else none. */
function localMirror(): string | undefined {
  const env = Deno.env.get("STYLIZE_WEIGHTS");
  if (env) return env;
  const dir = sharedDir();
  const shared = dir ? join(dir, "weights", WEIGHTS_FILE_NAME) : null;
  return shared && isFile(shared) ? shared : undefined;
}

let resolved: Promise<string> | null = null;

/**
 * The weights file, found as the CLI finds it (src/deno/weights_file.ts's
 * `resolveWeights`: the cache, else a download from the pinned URL verified by
 * size and sha256), with `$STYLIZE_WEIGHTS` or the shared data's copy, when
 * present, as a local mirror used instead; whatever the source, the file's
 * size and sha256 are checked.
 * @throws {Error} one line saying how to provide the file, when there is none.
 */
export function weightsPath(): Promise<string> {
  return resolved ??= findWeights();
}

async function findWeights(): Promise<string> {
  const mirror = localMirror();
  let path: string;
  try {
    path = await resolveWeights({
      path: mirror,
      // The mirror is the explicit path: the env's STYLIZE_WEIGHTS is read above.
      env: (k) => k === "STYLIZE_WEIGHTS" ? undefined : Deno.env.get(k),
    });
  } catch (err) {
    // The resolver's own hint names the CLI's --weights: say what the tests need instead.
    const why = (err instanceof Error ? err.message : String(err)).split("; ")[0];
    throw new Error(`no SqueezeNet weights for the tests (${why}): ${WEIGHTS_HINT}`);
  }
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (err) {
    throw new Error(`cannot read the weights ${path} (${err}): ${WEIGHTS_HINT}`);
  }
  const sha = bytes.length === WEIGHTS_SIZE ? await sha256Hex(bytes) : "";
  if (sha !== WEIGHTS_SHA256) {
    throw new Error(
      `the weights ${path} are not ${WEIGHTS_FILE_NAME} (${bytes.length} bytes, sha256 ` +
        `${sha || "not computed"}): ${WEIGHTS_HINT}`,
    );
  }
  return path;
}
