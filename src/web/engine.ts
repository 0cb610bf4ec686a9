/**
 * The browser's way to an {@link Engine}: the page's GPU (the adapter's own
 * limits, and the engine's default tile table for it) and its weights
 * (./weights.ts, loaded once and kept for the page's next device).
 * @module
 */
import { acquireGpu } from "../engine/gpu/device.ts";
import { Engine } from "../engine/model/stylizer.ts";
import type { ConvWeights } from "../engine/model/weights.ts";
import { NO_WEBGPU_HINT } from "./status.ts";
import { loadPageWeights } from "./weights.ts";

/**
 * The GPU memory a run in the page may plan on: WebGPU does not say how much
 * a GPU has, and a browser's GPU process gives a page far less than the
 * machine holds; 2 GiB is a 2048×1536 output (1.6 GiB measured) and a little.
 */
const PAGE_MEMORY = 2 * 2 ** 30;

/** The weights once loaded and verified (a new device after a lost one takes them from here). */
let weights: Promise<Map<string, ConvWeights>> | null = null;

/** The weights, loaded once (a failed load is tried again next time). */
function pageWeights(
  base: string,
  onProgress?: (message: string) => void,
): Promise<Map<string, ConvWeights>> {
  weights ??= loadPageWeights(base, onProgress);
  weights.catch(() => weights = null);
  return weights;
}

/** What {@link createPageEngine} takes besides the page's URL. */
export interface PageEngineOptions {
  /** Receives one-line progress messages (loading the weights). */
  onProgress?: (message: string) => void;
  /** Receives the engine's one-line notices (a plan retried in more tiles). */
  onNotice?: (message: string) => void;
  /** The most GPU memory (bytes) the engine may hold (the page's Max GPU memory). */
  maxGpuMemory?: number;
}

/**
 * Acquires the GPU and loads the weights (in parallel; once per page: a new
 * engine after a lost device reuses them) and builds the engine.
 * @param base the page's URL, where the weights are looked for first
 */
export async function createPageEngine(
  base: string,
  o: PageEngineOptions = {},
): Promise<Engine> {
  const [gpu, w] = await Promise.allSettled([
    acquireGpu({ noAdapterHint: NO_WEBGPU_HINT }),
    pageWeights(base, o.onProgress),
  ]);
  if (gpu.status === "rejected") throw gpu.reason;
  if (w.status === "rejected") {
    gpu.value.device.destroy();
    throw w.reason;
  }
  return Engine.create({
    gpu: gpu.value,
    weights: w.value,
    memoryBudget: PAGE_MEMORY,
    maxGpuMemory: o.maxGpuMemory,
    onNotice: o.onNotice,
  });
}
