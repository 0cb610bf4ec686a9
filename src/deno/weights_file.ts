/**
 * The weights file on disk: found (`--weights`, `$STYLIZE_WEIGHTS`, the cache,
 * an embedded copy), else downloaded from the pinned URL, verified and cached.
 * @module
 */
import { join } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { cacheDir, defaultEnv } from "./cache_dir.ts";
import { UserError } from "../engine/errors.ts";
import {
  type ConvWeights,
  sha256Hex,
  verifyAndParseWeights,
  WEIGHTS_FILE_NAME,
  WEIGHTS_SHA256,
  WEIGHTS_SIZE,
  WEIGHTS_URL,
} from "../engine/model/weights.ts";

/** Where `deno task compile` puts the verified weights it embeds (git-ignored). */
export const EMBEDDED_WEIGHTS_URL = new URL("../../dist/embed/sqz_notop.mat", import.meta.url);

/**
 * Reads, verifies (size and sha256) and parses a weights file.
 *
 * @param path a local path to sqz_notop.mat.
 * @returns layer name → weights, in network order.
 * @throws {UserError} if the file cannot be read, fails verification, is not a
 *   MAT-file, or is not SqueezeNet 1.1 features.
 */
export async function loadWeights(path: string): Promise<Map<string, ConvWeights>> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (err) {
    throw fileError(path, err, "weights file");
  }
  return await verifyAndParseWeights(bytes, path);
}

function errorText(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).replace(/\s+/g, " ").trim();
}

function fileError(path: string, err: unknown, what: string): UserError {
  if (err instanceof Deno.errors.NotFound) {
    return new UserError(
      `${what} ${path} does not exist; pass --weights PATH to sqz_notop.mat, ` +
        "or run `deno task weights` to download it",
    );
  }
  if (err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.PermissionDenied) {
    return new UserError(
      `no permission to read ${what} ${path}: ${errorText(err)}; run with --allow-read`,
    );
  }
  return new UserError(`cannot read ${what} ${path}: ${errorText(err)}`);
}

/**
 * The directory where downloaded weights are cached: stylize's cache
 * directory ({@link cacheDir}: `$STYLIZE_CACHE_DIR`, else the platform cache
 * directory plus `stylize`).
 *
 * @param env environment lookup; defaults to `Deno.env.get`, treating a missing
 *   --allow-env permission as unset.
 * @returns the directory, or `undefined` if no home or cache directory is known.
 */
export function weightsCacheDir(
  env: (name: string) => string | undefined = defaultEnv,
): string | undefined {
  return cacheDir(env);
}

/** Options of {@link resolveWeights}. */
export interface ResolveWeightsOptions {
  /** An explicit weights file (e.g. from `--weights`); it must exist. */
  path?: string;
  /**
   * Environment lookup; defaults to `Deno.env.get`, treating a missing
   * --allow-env permission as unset. Reads `STYLIZE_WEIGHTS`,
   * `STYLIZE_CACHE_DIR`, `STYLIZE_WEIGHTS_URL` and the platform's cache
   * variables (`XDG_CACHE_HOME`, `HOME`, `LOCALAPPDATA`, `USERPROFILE`).
   */
  env?: (name: string) => string | undefined;
  /** Receives one-line progress messages (downloading, cached). */
  onProgress?: (msg: string) => void;
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).isFile;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

async function requireFile(path: string, what: string): Promise<string> {
  let ok: boolean;
  try {
    ok = await isFile(path);
  } catch (err) {
    throw fileError(path, err, what);
  }
  if (!ok) {
    throw new UserError(
      `${what} ${path} does not exist or is not a file; pass the path of sqz_notop.mat, ` +
        "or leave it unset to download the weights",
    );
  }
  return path;
}

/**
 * Finds the weights file, downloading it into the cache if needed.
 *
 * Order: the explicit `path` (must exist); then `$STYLIZE_WEIGHTS` (must
 * exist); then `sqz_notop.mat` in the {@link weightsCacheDir cache directory},
 * trusted if its size and sha256 match; otherwise it is downloaded from
 * `$STYLIZE_WEIGHTS_URL` or {@link WEIGHTS_URL} into a temporary file in the
 * cache directory, verified (size and sha256 against {@link WEIGHTS_SIZE} and
 * {@link WEIGHTS_SHA256}) and only then renamed into place.
 *
 * @returns a local path to the weights file.
 * @throws {UserError} if an explicit file is missing, no cache directory is
 *   known or writable, the download fails, or the download fails verification
 *   (nothing is cached then).
 */
export async function resolveWeights(options: ResolveWeightsOptions = {}): Promise<string> {
  const env = options.env ?? defaultEnv;
  const progress = options.onProgress ?? (() => {});

  if (options.path !== undefined && options.path !== "") {
    return await requireFile(options.path, "weights file");
  }
  const fromEnv = env("STYLIZE_WEIGHTS");
  if (fromEnv) return await requireFile(fromEnv, "weights file from STYLIZE_WEIGHTS");

  const dir = weightsCacheDir(env);
  if (dir === undefined) {
    throw new UserError(
      "cannot find a cache directory for the weights (HOME is not set or not readable); " +
        "set STYLIZE_CACHE_DIR, or pass --weights PATH / set STYLIZE_WEIGHTS",
    );
  }
  const cached = join(dir, WEIGHTS_FILE_NAME);
  if (await cachedFileIsGenuine(cached, progress)) return cached;
  // A copy embedded by `deno task compile` (inside a compiled binary, or left in dist/).
  const embedded = fromFileUrl(EMBEDDED_WEIGHTS_URL);
  if (await cachedFileIsGenuine(embedded, () => {})) return embedded;

  const url = env("STYLIZE_WEIGHTS_URL") || WEIGHTS_URL;
  await download(url, dir, cached, progress);
  return cached;
}

/** Whether the cached file exists with the right size and sha256. */
async function cachedFileIsGenuine(
  cached: string,
  progress: (msg: string) => void,
): Promise<boolean> {
  let bytes: Uint8Array;
  try {
    const info = await Deno.stat(cached);
    if (!info.isFile) return false;
    if (info.size !== WEIGHTS_SIZE) {
      progress(`cached weights ${cached} have the wrong size; downloading them again`);
      return false;
    }
    bytes = await Deno.readFile(cached);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw fileError(cached, err, "cached weights file");
  }
  if (bytes.length === WEIGHTS_SIZE && await sha256Hex(bytes) === WEIGHTS_SHA256) return true;
  progress(`cached weights ${cached} fail sha256 verification; downloading them again`);
  return false;
}

function downloadHint(): string {
  return "check the network, or pass --weights PATH / set STYLIZE_WEIGHTS to a local copy of " +
    `sqz_notop.mat (from ${WEIGHTS_URL})`;
}

async function download(
  url: string,
  dir: string,
  dest: string,
  progress: (msg: string) => void,
): Promise<void> {
  try {
    await Deno.mkdir(dir, { recursive: true });
  } catch (err) {
    throw new UserError(
      `cannot create the weights cache directory ${dir}: ${errorText(err)}; ` +
        "set STYLIZE_CACHE_DIR to a writable directory, or pass --weights PATH",
    );
  }

  progress(`downloading SqueezeNet weights (${WEIGHTS_SIZE} bytes) from ${url}`);
  let bytes: Uint8Array;
  try {
    const res = await fetch(url);
    if (!res.ok) {
      await res.body?.cancel();
      throw new UserError(
        `cannot download weights from ${url}: HTTP ${res.status} ${res.statusText}; ` +
          downloadHint(),
      );
    }
    bytes = await readCapped(res, WEIGHTS_SIZE + 1);
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(
      `cannot download weights from ${url}: ${errorText(err)}; ${downloadHint()}`,
    );
  }

  const temp = join(
    dir,
    `.${WEIGHTS_FILE_NAME}.${crypto.randomUUID().slice(0, 8)}.part`,
  );
  let renamed = false;
  try {
    try {
      await Deno.writeFile(temp, bytes);
    } catch (err) {
      throw new UserError(
        `cannot write the weights cache ${temp}: ${errorText(err)}; ` +
          "set STYLIZE_CACHE_DIR to a writable directory, or pass --weights PATH",
      );
    }
    // Verify what actually landed on disk.
    const written = await Deno.readFile(temp);
    if (written.length !== WEIGHTS_SIZE) {
      throw new UserError(
        `downloaded weights from ${url} failed verification: ${written.length} bytes, ` +
          `expected ${WEIGHTS_SIZE} (sha256 ${WEIGHTS_SHA256}); nothing was cached`,
      );
    }
    const sha = await sha256Hex(written);
    if (sha !== WEIGHTS_SHA256) {
      throw new UserError(
        `downloaded weights from ${url} failed sha256 verification: expected ` +
          `${WEIGHTS_SHA256}, got ${sha}; nothing was cached`,
      );
    }
    await Deno.rename(temp, dest);
    renamed = true;
  } finally {
    if (!renamed) {
      await Deno.remove(temp).catch(() => {});
    }
  }
  progress(`cached SqueezeNet weights at ${dest}`);
}

/** Reads a response body, stopping after `cap` bytes. */
async function readCapped(res: Response, cap: number): Promise<Uint8Array> {
  if (!res.body) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = res.body.getReader();
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    total += value.length;
    if (total >= cap) {
      await reader.cancel();
      break;
    }
  }
  const out = new Uint8Array(total);
  let p = 0;
  for (const c of chunks) {
    out.set(c, p);
    p += c.length;
  }
  return out;
}
