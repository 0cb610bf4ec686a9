/**
 * The browser's way to an {@link Engine}: the page's GPU (the adapter's own
 * limits, and the engine's default tile table for it) and its weights
 * (./weights.ts).
 * @module
 */
import { acquireGpu } from "../engine/gpu/device.ts";
import { Engine } from "../engine/model/stylizer.ts";
import { NO_WEBGPU_HINT } from "./status.ts";
import { loadPageWeights } from "./weights.ts";

/**
 * The GPU memory a run in the page may plan on: WebGPU does not say how much
 * a GPU has, and a browser's GPU process gives a page far less than the
 * machine holds; 2 GiB is a 2048×1536 output (1.6 GiB measured) and a little.
 */
const PAGE_MEMORY = 2 * 2 ** 30;

/**
 * Acquires the GPU and loads the weights (in parallel) and builds the engine.
 * @param base the page's URL, where the weights are looked for first
 * @param onProgress receives one-line progress messages
 */
export async function createPageEngine(
  base: string,
  onProgress?: (message: string) => void,
): Promise<Engine> {
  const [gpu, weights] = await Promise.allSettled([
    acquireGpu({ noAdapterHint: NO_WEBGPU_HINT }),
    loadPageWeights(base, onProgress),
  ]);
  if (gpu.status === "rejected") throw gpu.reason;
  if (weights.status === "rejected") {
    gpu.value.device.destroy();
    throw weights.reason;
  }
  return Engine.create({ gpu: gpu.value, weights: weights.value, memoryBudget: PAGE_MEMORY });
}
