/**
 * The pretrained SqueezeNet v1.1 feature weights: where they come from (the
 * pinned URL, size and sha256), how their bytes are verified, and how the
 * MAT-file is turned into per-layer convolution weights. Finding, downloading
 * and caching the file belongs to each platform's edge (src/deno/weights_file.ts,
 * src/web/).
 * @module
 */

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

const FIX_HINT = `use the genuine sqz_notop.mat (sha256 ${WEIGHTS_SHA256})`;

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
      throw new UserError(
        `weights file ${source} is unreadable: ${err.message}; ${FIX_HINT}`,
        ["weights"],
      );
    }
    throw err;
  }
  const notSqueezeNet = (what: string) =>
    new UserError(
      `weights file ${source} is not SqueezeNet 1.1 features: ${what}; ${FIX_HINT}`,
      ["weights"],
    );

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
 * sha256 of some bytes, as lowercase hex.
 * @param bytes the data.
 */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Checks that `bytes` are the genuine weights file (size and sha256) and
 * parses them.
 *
 * @param bytes the whole file.
 * @param source the file's path or URL, for error messages.
 * @returns layer name → weights, in network order.
 * @throws {UserError} if the bytes fail verification or are not SqueezeNet 1.1 features.
 */
export async function verifyAndParseWeights(
  bytes: Uint8Array,
  source: string,
): Promise<Map<string, ConvWeights>> {
  // The network is built for exactly these weights: a changed file is refused.
  if (bytes.length !== WEIGHTS_SIZE || await sha256Hex(bytes) !== WEIGHTS_SHA256) {
    throw new UserError(
      `weights file ${source} fails sha256 verification (expected ${WEIGHTS_SIZE} bytes with ` +
        `sha256 ${WEIGHTS_SHA256}): it is damaged or not sqz_notop.mat; ` +
        "run `deno task weights` for a verified copy",
    );
  }
  return parseSqueezeNet(bytes, source);
}
