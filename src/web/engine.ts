/**
 * The browser's way to an {@link Engine}: the page's GPU (the adapter's own
 * limits and default tile table, as on every platform) and its weights
 * (./weights.ts).
 * @module
 */
import { acquireGpu, type Gpu } from "../engine/gpu/device.ts";
import { Engine } from "../engine/model/stylizer.ts";
import { GPU_TILES, type TileTable } from "../engine/ops/context.ts";
import { loadPageWeights } from "./weights.ts";

/** What a missing `navigator.gpu` or adapter tells the visitor. */
export const NO_WEBGPU_HINT = "WebGPU is not available here: no GPU adapter in this browser. " +
  "Use a browser with WebGPU on (Chrome or Edge 113+, Safari 26+, Firefox 141+ on Windows), " +
  "over https or from localhost";

/** The adapter as one line: its description, else vendor and architecture. */
export function adapterLabel(gpu: Gpu): string {
  const [vendor, architecture, device, description] = gpu.adapterKey.split("|");
  const name = description ||
    [vendor, architecture, device].filter((s) => s).join(" ");
  return (name || "unknown adapter") + (gpu.isFallback ? " (software)" : "");
}

/**
 * The tile table for `gpu`: the engine's default for the adapter, except on
 * software adapters other than lavapipe (which names its vector width):
 * lavapipe's table (up to 128 vec4 accumulators per invocation) is too large
 * for them. Chromium's SwiftShader compiled its strided-backward kernel for
 * over two minutes until the GPU watchdog ended the GPU process; the hardware
 * GPUs' table, with 8–16 accumulators, compiles in seconds there.
 */
export function pageTiles(gpu: Gpu): TileTable | undefined {
  return gpu.isFallback && gpu.cpuLanes === 0 ? GPU_TILES : undefined;
}

/**
 * Acquires the GPU and loads the weights (in parallel) and builds the engine.
 * @param base the page's URL, where the weights are looked for first
 * @param onProgress receives one-line progress messages
 */
export async function createPageEngine(
  base: string,
  onProgress?: (message: string) => void,
): Promise<Engine> {
  const [gpu, weights] = await Promise.all([
    acquireGpu({ noAdapterHint: NO_WEBGPU_HINT }),
    loadPageWeights(base, onProgress),
  ]);
  return Engine.create({ gpu, weights, tiles: pageTiles(gpu) });
}
