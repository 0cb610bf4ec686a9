/**
 * The pretrained SqueezeNet v1.1 feature weights: where they come from, how
 * they are found, downloaded, verified and cached, and how the MAT-file is
 * turned into per-layer convolution weights.
 * @module
 */

import { join } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { cacheDir, defaultEnv } from "../cache_dir.ts";
import { UserError } from "../errors.ts";
import { type MatValue, parseMat } from "./mat.ts";

/** Weights of one convolution layer. */
export interface ConvWeights {
  /** Layer name, e.g. `conv1` or `fire2/squeeze1x1`. */
  name: string;
  /** Kernel height. */
  kh: number;
  /** Kernel width. */
  kw: number;
  /** Input channels. */
  cin: number;
  /** Output channels. */
  cout: number;
  /** Row-major `[kh][kw][cin][cout]` (cout fastest): `((y * kw + x) * cin + i) * cout + o`. */
  kernel: Float32Array;
  /** One bias per output channel. */
  bias: Float32Array;
}

/** Pinned download URL of the weights file. */
export const WEIGHTS_URL = "https://github.com/avoroshilov/neural-style/raw/dev/sqz_notop.mat";

/** sha256 (lowercase hex) of the genuine weights file. */
export const WEIGHTS_SHA256 = "1bb1685c050e78053830d0c70a813479952e0c6fa5f334118cd0a93fb8acd166";

/** Size in bytes of the genuine weights file. */
export const WEIGHTS_SIZE = 2894704;

/** File name of the weights in the cache directory. */
export const WEIGHTS_FILE_NAME = "sqz_notop.mat";

/** Where `deno task compile` puts the verified weights it embeds (git-ignored). */
export const EMBEDDED_WEIGHTS_URL = new URL("../../dist/embed/sqz_notop.mat", import.meta.url);

/** SqueezeNet 1.1 fire modules: name, input channels, squeeze channels, expand channels. */
export const FIRE_MODULES: readonly (readonly [string, number, number, number])[] = [
  ["fire2", 64, 16, 64],
  ["fire3", 128, 16, 64],
  ["fire4", 128, 32, 128],
  ["fire5", 256, 32, 128],
  ["fire6", 256, 48, 192],
  ["fire7", 384, 48, 192],
  ["fire8", 384, 64, 256],
  ["fire9", 512, 64, 256],
];

/**
 * Expected kernel shape `[kh, kw, cin, cout]` of every layer of SqueezeNet 1.1's
 * features, keyed by layer name, in network order.
 */
export const LAYER_SHAPES: ReadonlyMap<string, readonly [number, number, number, number]> = new Map<
  string,
  readonly [number, number, number, number]
>([
  ["conv1", [3, 3, 3, 64]],
  ...FIRE_MODULES.flatMap(([fire, cin, s, e]) =>
    [
      [`${fire}/squeeze1x1`, [1, 1, cin, s]],
      [`${fire}/expand1x1`, [1, 1, s, e]],
      [`${fire}/expand3x3`, [3, 3, s, e]],
    ] as [string, readonly [number, number, number, number]][]
  ),
]);

/**
 * The 25 variables of the weights file, in network order: `conv1`, then for
 * each of fire2 … fire9 `fireN/squeeze1x1`, `fireN/expand1x1`, `fireN/expand3x3`.
 */
export const LAYER_NAMES: readonly string[] = [...LAYER_SHAPES.keys()];

const FIX_HINT = "pass --weights PATH to the genuine sqz_notop.mat " +
  `(sha256 ${WEIGHTS_SHA256}), or run \`deno task weights\` to download it`;

function shapeText(shape: readonly number[]): string {
  return shape.join("x");
}

/**
 * Parses the weights MAT-file and validates it against SqueezeNet 1.1.
 *
 * Each of the {@link LAYER_NAMES} must be a 1×2 cell array {kernel, bias} whose
 * kernel is a (kh, kw, in, out) array (stored column-major) and whose bias holds
 * `out` values. Kernels are converted to row-major `[kh][kw][cin][cout]`.
 *
 * @param bytes the whole file.
 * @param source the file's path or URL, for error messages.
 * @returns layer name → weights, in network order.
 * @throws {UserError} if the file is not a readable MAT-file or not SqueezeNet 1.1 features.
 */
export function parseSqueezeNet(
  bytes: Uint8Array,
  source = "(in memory)",
): Map<string, ConvWeights> {
  let vars: Map<string, MatValue>;
  try {
    vars = parseMat(bytes);
  } catch (err) {
    if (err instanceof UserError) {
      throw new UserError(`weights file ${source} is unreadable: ${err.message}; ${FIX_HINT}`);
    }
    throw err;
  }
  const notSqueezeNet = (what: string) =>
    new UserError(`weights file ${source} is not SqueezeNet 1.1 features: ${what}; ${FIX_HINT}`);

  const layers = new Map<string, ConvWeights>();
  for (const [name, shape] of LAYER_SHAPES) {
    const v = vars.get(name);
    if (v === undefined) throw notSqueezeNet(`layer ${name} is missing`);
    if (v.kind !== "cell" || v.items.length !== 2) {
      const got = v.kind === "cell" ? `a cell array of ${v.items.length}` : "a numeric array";
      throw notSqueezeNet(`layer ${name} is ${got}, expected a 1x2 cell array {kernel, bias}`);
    }
    const [k, b] = v.items;
    if (k.kind !== "numeric" || b.kind !== "numeric") {
      throw notSqueezeNet(`layer ${name} holds a nested cell array, expected {kernel, bias}`);
    }
    // MATLAB drops trailing singleton dimensions; pad back to four.
    const kdims = [...k.dims];
    while (kdims.length < 4) kdims.push(1);
    if (kdims.length !== 4 || kdims.some((d, i) => d !== shape[i])) {
      throw notSqueezeNet(
        `layer ${name} has shape ${shapeText(k.dims)}, expected ${shapeText(shape)}`,
      );
    }
    const [kh, kw, cin, cout] = shape;
    if (b.data.length !== cout || b.dims.filter((d) => d !== 1).length > 1) {
      throw notSqueezeNet(
        `layer ${name} has bias shape ${shapeText(b.dims)}, expected 1x${cout}`,
      );
    }
    layers.set(name, {
      name,
      kh,
      kw,
      cin,
      cout,
      kernel: columnMajorToHWIO(k.data, kh, kw, cin, cout),
      bias: Float32Array.from(b.data),
    });
  }
  return layers;
}

/**
 * Converts a column-major (kh, kw, cin, cout) array — element (a, b, c, d) at
 * `a + kh*(b + kw*(c + cin*d))` — to row-major `[kh][kw][cin][cout]`.
 */
function columnMajorToHWIO(
  src: Float32Array,
  kh: number,
  kw: number,
  cin: number,
  cout: number,
): Float32Array {
  const dst = new Float32Array(src.length);
  for (let d = 0; d < cout; d++) {
    for (let c = 0; c < cin; c++) {
      for (let b = 0; b < kw; b++) {
        for (let a = 0; a < kh; a++) {
          dst[((a * kw + b) * cin + c) * cout + d] = src[a + kh * (b + kw * (c + cin * d))];
        }
      }
    }
  }
  return dst;
}

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
  // The network is built for exactly these weights: a changed file is refused.
  if (bytes.length !== WEIGHTS_SIZE || await sha256Hex(bytes) !== WEIGHTS_SHA256) {
    throw new UserError(
      `weights file ${path} fails sha256 verification (expected ${WEIGHTS_SIZE} bytes with ` +
        `sha256 ${WEIGHTS_SHA256}): it is damaged or not sqz_notop.mat; ` +
        "run `deno task weights` for a verified copy",
    );
  }
  return parseSqueezeNet(bytes, path);
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

/**
 * sha256 of some bytes, as lowercase hex.
 * @param bytes the data.
 */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
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
