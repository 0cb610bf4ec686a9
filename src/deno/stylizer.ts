/**
 * Deno's way to an {@link Engine}: the weights file found (or downloaded,
 * verified and cached), the GPU acquired with lavapipe configured, the tuned
 * tile table of this adapter read from the cache directory.
 * @module
 */
import type { Gpu } from "../engine/gpu/device.ts";
import { type Faults, parseFaults } from "../engine/gpu/faults.ts";
import { Engine, type Stylizer } from "../engine/model/stylizer.ts";
import type { TileTable } from "../engine/ops/context.ts";
import type { Pooling } from "../engine/ops/pool.ts";
import { acquireDenoGpu } from "./driver.ts";
import { loadTunedTiles, tunedTilesPath } from "./tiles_cache.ts";
import { loadWeights, resolveWeights } from "./weights_file.ts";

/** Options of {@link createStylizer}. */
export interface StylizerOptions {
  /** Path of sqz_notop.mat; default: $STYLIZE_WEIGHTS, the cache, then a verified download. */
  weights?: string;
  /** Reports progress (e.g. a download). */
  onProgress?: (message: string) => void;
  /** Tile shapes of the kernels, replacing entries of the default table (for tuning). */
  tiles?: Partial<TileTable>;
  /**
   * Without `tiles`: the tuned-tiles file to read (`deno task tune` writes one
   * per adapter in the cache directory, the default), or false for the
   * adapter's default table.
   */
  tilesFile?: string | false;
  /** The largest buffer plans may make (bytes; at most and by default 128 MiB): see EngineOptions. */
  maxBufferBytes?: number;
  /** The most pixels a tile's network may run on (tests: forces small images into tiles). */
  tilePixels?: number;
  /**
   * The network's pooling layers: "max" (default, SqueezeNet's own) or "avg"
   * (each ceil-mode window's mean over its elements inside the input), used
   * by every feature, Gram and loss of the stylizer.
   */
  pooling?: Pooling;
  /** The most GPU memory (bytes) the engine may hold (`--max-gpu-memory`): see EngineOptions. */
  maxGpuMemory?: number;
  /**
   * A fault plan; default: `$STYLIZE_FAULT`'s (src/engine/gpu/faults.ts), a
   * testing aid. Give the same object to the engine a run recovers on.
   */
  faults?: Faults;
  /** Receives the engine's one-line notices (a plan retried with smaller tiles). */
  onNotice?: (message: string) => void;
  /** The longest an iteration's submits should run, in ms (see EngineOptions; default 200). */
  submitMs?: number;
}

/** The fault plan of `$STYLIZE_FAULT` (a testing aid), empty without it. */
export function faultsFromEnv(): Faults {
  const spec = Deno.env.get("STYLIZE_FAULT");
  return spec ? parseFaults(spec) : {};
}

/**
 * The GPU memory a run may plan on: on a CPU adapter (lavapipe), whose
 * "GPU memory" is the machine's, half of it (the CPU side holds copies of
 * the image-sized results as well); on a GPU, no limit known (WebGPU does
 * not say how much memory a GPU has: an allocation that fails is reported
 * by the device).
 */
function memoryBudget(gpu: Gpu): number {
  if (!gpu.isFallback && gpu.cpuLanes === 0) return Infinity;
  try {
    return Deno.systemMemoryInfo().total / 2;
  } catch {
    return Infinity;
  }
}

/** Finds and loads the weights, acquires the GPU and returns the {@link Engine}. */
export async function createEngine(options: StylizerOptions = {}): Promise<Engine> {
  const path = await resolveWeights({ path: options.weights, onProgress: options.onProgress });
  const weights = await loadWeights(path);
  const gpu = await acquireDenoGpu();
  let tiles = options.tiles;
  let tilesSource: string | undefined;
  if (!tiles && options.tilesFile !== false) {
    const file = options.tilesFile ?? await tunedTilesPath(gpu.adapterKey);
    const got = file ? await loadTunedTiles(file, gpu.adapterKey) : undefined;
    if (got && "tiles" in got) [tiles, tilesSource] = [got.tiles, file!];
    else if (got && got.reason !== "no tuned tiles") {
      options.onProgress?.(`ignoring ${file}: ${got.reason}; run \`deno task tune\` again`);
    }
  }
  return Engine.create({
    gpu,
    weights,
    tiles,
    tilesSource,
    maxBufferBytes: options.maxBufferBytes,
    tilePixels: options.tilePixels,
    pooling: options.pooling,
    memoryBudget: memoryBudget(gpu),
    maxGpuMemory: options.maxGpuMemory,
    submitMs: options.submitMs,
    faults: options.faults ?? faultsFromEnv(),
    onNotice: options.onNotice,
  });
}

/** Acquires the GPU, loads and uploads the weights, and returns a {@link Stylizer}. */
export function createStylizer(options?: StylizerOptions): Promise<Stylizer> {
  return createEngine(options);
}
