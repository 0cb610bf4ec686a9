/**
 * Test helpers: one GPU per test process, readback, error metrics and a
 * safetensors reader (the test data is found by tests/data.ts).
 * @module
 */
import type { Gpu } from "../src/engine/gpu/device.ts";
import { acquireDenoGpu } from "../src/deno/driver.ts";
import { DEFAULT_CONFIG, type StyleConfig } from "../src/engine/model/optimize.ts";
import { BufferPool } from "../src/engine/gpu/pool.ts";
import { PipelineCache } from "../src/engine/gpu/pipelines.ts";
import { type Program, readBuffer } from "../src/engine/gpu/scheduler.ts";
import {
  defaultTiles,
  type FeatureTexture,
  OpContext,
  Scope,
  type TileTable,
} from "../src/engine/ops/context.ts";

let gpuPromise: Promise<Gpu> | null = null;

/** The process-wide GPU used by the tests. */
export function testGpu(): Promise<Gpu> {
  return gpuPromise ??= acquireDenoGpu();
}

/**
 * A fresh op context (own pool and pipeline cache) on the test GPU, with
 * `tiles` (default: the adapter's own default table, as the engine uses).
 */
export async function testContext(
  tiles?: TileTable,
): Promise<{ ctx: OpContext; scope: Scope; gpu: Gpu; pool: BufferPool }> {
  const gpu = await testGpu();
  const pool = new BufferPool(gpu.device);
  const table = tiles ?? defaultTiles(gpu.isFallback, gpu.cpuLanes);
  const ctx = new OpContext(gpu.device, pool, new PipelineCache(gpu.device), table);
  return { ctx, scope: new Scope(pool), gpu, pool };
}

/** Reads `n` floats at element `offset` of `buffer`. */
export async function readFloats(
  device: GPUDevice,
  buffer: GPUBuffer,
  offset: number,
  n: number,
): Promise<Float32Array> {
  return new Float32Array(await readBuffer(device, buffer, offset * 4, n * 4));
}

/** Relative error of a scalar |a − b| / |b|. */
export function relErr(a: number, b: number): number {
  return Math.abs(a - b) / Math.abs(b);
}

/** ‖a − b‖ / ‖b‖. */
export function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} != ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}

/** A deterministic pseudo-random generator (mulberry32) in [lo, hi). */
export function rng(seed: number, lo = -1, hi = 1): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  };
}

/** `n` pseudo-random floats. */
export function randomFloats(n: number, seed: number, lo = -1, hi = 1): Float32Array<ArrayBuffer> {
  const r = rng(seed, lo, hi);
  return Float32Array.from({ length: n }, r);
}

/** A tensor read from a safetensors file. */
export interface NamedTensor {
  shape: number[];
  data: Float32Array<ArrayBuffer>;
}

/** Reads every F32 tensor of a safetensors file, plus its metadata. */
export function readSafetensors(
  path: string,
): { tensors: Map<string, NamedTensor>; metadata: Record<string, string> } {
  const bytes = Deno.readFileSync(path);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const n = Number(dv.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  const tensors = new Map<string, NamedTensor>();
  let metadata: Record<string, string> = {};
  for (const [name, v] of Object.entries(header)) {
    if (name === "__metadata__") {
      metadata = v as Record<string, string>;
      continue;
    }
    const t = v as { dtype: string; shape: number[]; data_offsets: [number, number] };
    if (t.dtype !== "F32") throw new Error(`${name}: dtype ${t.dtype}`);
    const start = 8 + n + t.data_offsets[0];
    const data = new Float32Array(bytes.slice(start, 8 + n + t.data_offsets[1]).buffer);
    tensors.set(name, { shape: t.shape, data });
  }
  return { tensors, metadata };
}

/**
 * `c` planes of `np` values spread `plane` apart from element `at`, the gaps
 * (and the `at` elements before) filled with `fill`.
 */
export function padPlanes(
  data: Float32Array,
  c: number,
  np: number,
  plane: number,
  fill: number,
  at = 0,
): Float32Array<ArrayBuffer> {
  const out = new Float32Array(at + c * plane).fill(fill);
  for (let k = 0; k < c; k++) out.set(data.subarray(k * np, (k + 1) * np), at + k * plane);
  return out;
}

/** The inverse of {@link padPlanes}: the first `np` values of each of `c` planes `plane` apart. */
export function unpadPlanes(all: Float32Array, c: number, np: number, plane: number): Float32Array {
  const out = new Float32Array(c * np);
  for (let k = 0; k < c; k++) out.set(all.subarray(k * plane, k * plane + np), k * np);
  return out;
}

/** Records `prog` into one command buffer and submits it. */
export function runProgram(device: GPUDevice, prog: Program): void {
  const enc = device.createCommandEncoder();
  prog.encode(enc);
  device.queue.submit([enc.finish()]);
}

/**
 * Uploads `data` into a buffer and, with `texture`, also makes a feature
 * texture of it: the buffer then covers whole texture rows (zeros past
 * `data`) and `prog` gets the copy into the texture. `maxDim` caps the
 * texture's side (to test wider textures).
 */
export function uploadTextured(
  ctx: OpContext,
  scope: Scope,
  prog: Program,
  data: Float32Array,
  label: string,
  texture: boolean,
  maxDim?: number,
): { buffer: GPUBuffer; tex: FeatureTexture | undefined } {
  const tex = texture
    ? scope.featureTexture(ctx.device, data.length, `${label}.tex`, maxDim) ?? undefined
    : undefined;
  if (texture && !tex) throw new Error(`${label}: no texture of ${data.length} floats`);
  const full = new Float32Array(Math.max(data.length, tex?.floats ?? 0));
  full.set(data);
  const buffer = ctx.upload(scope, full, label);
  if (tex) prog.copyToTexture(`${label}.tex`, buffer, tex.texture);
  return { buffer, tex };
}

/**
 * The configuration of adam20.safetensors (its `__metadata__.config` and
 * `iters`) as a StyleConfig: the oracle's loop the golden recorded.
 */
export function adam20Config(metadata: Record<string, string>): StyleConfig {
  const ref = JSON.parse(metadata.config);
  return {
    ...DEFAULT_CONFIG,
    contentLayer: ref.content_layer,
    contentWeight: ref.content_weight,
    styleLayers: ref.style_layers,
    styleWeights: ref.style_weights,
    tvWeight: ref.tv_weight,
    lr: ref.lr,
    iters: Number(metadata.iters),
    decayAt: ref.decay_at,
  };
}

/**
 * A command line that runs `argv` obeying file modes: as is for a user; for
 * root (CI runs as root), under `setpriv` (util-linux) without the
 * capabilities that let root read, write and search regardless of the mode
 * bits (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), so that a chmod-000 file or a
 * mode-555 directory fails for it as for anyone else.
 */
export function obeyingFileModes(argv: string[]): string[] {
  if (Deno.uid() !== 0) return argv;
  const caps = "-dac_override,-dac_read_search";
  return ["setpriv", `--inh-caps=${caps}`, `--bounding-set=${caps}`, ...argv];
}

/** Why a test that needs file modes runs the way it does, for its name. */
export const FILE_MODES_NOTE = Deno.uid() === 0
  ? " (as root: run without CAP_DAC_OVERRIDE through setpriv)"
  : "";
