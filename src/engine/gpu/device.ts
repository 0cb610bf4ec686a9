/**
 * Adapter and device acquisition. Asks for the adapter's real limits (the
 * WebGPU defaults are much smaller: 128 MiB storage bindings instead of 2 GiB
 * on large GPUs, 16 KiB of workgroup memory) and the optional features the
 * kernels can use.
 * @module
 */
import { UserError } from "../errors.ts";

/** An acquired GPU: the device plus what we learnt about its adapter. */
export interface Gpu {
  /** The logical device every buffer and pipeline belongs to. */
  device: GPUDevice;
  /** One line naming the adapter, e.g. "llvmpipe (LLVM 15.0.6, 256 bits)". */
  adapterName: string;
  /** What identifies the adapter across runs (vendor, architecture, device, description). */
  adapterKey: string;
  /** True on a software (CPU) adapter such as lavapipe. */
  isFallback: boolean;
  /**
   * Invocations per SIMD vector of a CPU adapter: the width its description
   * names (lavapipe: "… 256 bits" → 8, "… 512 bits" → 16), else, on a
   * software adapter, the subgroup size it reports (SwiftShader: 4); 0 when
   * unknown and on GPUs ({@link cpuLanesOf}).
   */
  cpuLanes: number;
  /** Whether `timestamp-query` was granted (per-kernel GPU timing). */
  hasTimestamps: boolean;
  /** The limits granted to the device (the adapter's own). */
  limits: GPUSupportedLimits;
  /** Resolves with a message if the device is lost other than by `destroy()` (never rejects). */
  lost: Promise<string>;
  /**
   * Loses the device as a driver reset does (a fault plan's
   * `lose-device@N`): {@link Gpu.lost} resolves with `message` and the device
   * stops working; nothing of the engine is disposed.
   */
  loseDevice(message: string): void;
  /** Validation and out-of-memory errors nobody captured, in order (also logged). */
  errors: string[];
}

/** Limits requested at the adapter's maximum, when the adapter reports them. */
const WANTED_LIMITS = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupSizeY",
  "maxComputeWorkgroupSizeZ",
  "maxComputeWorkgroupsPerDimension",
  "maxStorageBuffersPerShaderStage",
  "maxBindGroups",
] as const;

const NO_ADAPTER_HINT = "no WebGPU adapter found; on a machine without a GPU install the " +
  "Vulkan CPU driver (Debian/Ubuntu: apt-get install mesa-vulkan-drivers), " +
  "on a GPU machine install its Vulkan driver";

/** Options of {@link acquireGpu}. */
export interface AcquireOptions {
  /**
   * Runs the adapter and device requests (the platform's edge may prepare the
   * driver around them, e.g. src/deno/driver.ts); default: just runs them.
   */
  around?: <T>(request: () => Promise<T>) => Promise<T>;
  /** The hint a missing adapter's error gives (default: how to install a Vulkan driver). */
  noAdapterHint?: string;
}

/**
 * Requests a high-performance adapter and a device with the adapter's full
 * limits and the optional features `timestamp-query` (where present).
 * Throws {@link UserError} when no adapter is available.
 */
export async function acquireGpu(options: AcquireOptions = {}): Promise<Gpu> {
  const around = options.around ?? (<T>(request: () => Promise<T>) => request());
  const hint = options.noAdapterHint ?? NO_ADAPTER_HINT;
  const { adapter, device } = await around(async () => {
    // navigator.gpu's getter already starts the driver: it is read in here.
    if (!("gpu" in navigator) || !navigator.gpu) throw new UserError(hint);
    let adapter: GPUAdapter | null = null;
    try {
      adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
    } catch (e) {
      throw new UserError(`${hint} (${(e as Error).message})`);
    }
    if (!adapter) throw new UserError(hint);
    return { adapter, device: await requestDevice(adapter) };
  });
  return describe(adapter, device);
}

/** A device with the adapter's full limits and `timestamp-query` where present. */
async function requestDevice(adapter: GPUAdapter): Promise<GPUDevice> {
  const requiredLimits: Record<string, number> = {};
  for (const name of WANTED_LIMITS) {
    const v = (adapter.limits as unknown as Record<string, number>)[name];
    if (typeof v === "number") requiredLimits[name] = v;
  }
  const requiredFeatures: GPUFeatureName[] = [];
  if (adapter.features.has("timestamp-query")) requiredFeatures.push("timestamp-query");
  return await adapter.requestDevice({ requiredLimits, requiredFeatures });
}

/** The {@link Gpu} of an acquired device. */
function describe(adapter: GPUAdapter, device: GPUDevice): Gpu {
  const info = adapter.info;
  const adapterName = [info.description, info.vendor && `vendor ${info.vendor}`, info.architecture]
    .filter((s) => s).join(", ") || "unknown adapter";
  // A device destroyed on purpose (dispose) is not reported: that promise never settles.
  let report!: (message: string) => void;
  const lost = new Promise<string>((resolve) => report = resolve);
  device.lost.then((i) => {
    if (i.reason !== "destroyed") {
      report(`GPU device lost (${i.reason || "unknown reason"}): ${i.message}`);
    }
  });
  const errors: string[] = [];
  device.addEventListener("uncapturederror", (e) => {
    const msg = (e as GPUUncapturedErrorEvent).error.message;
    errors.push(msg);
    console.error(`GPU error: ${msg}`);
  });
  const adapterKey = [info.vendor, info.architecture, info.device, info.description].join("|");
  const isFallback = Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter);
  return {
    errors,
    device,
    adapterName,
    adapterKey,
    isFallback,
    cpuLanes: cpuLanesOf(info, isFallback),
    hasTimestamps: device.features.has("timestamp-query"),
    limits: device.limits,
    lost,
    loseDevice(message: string) {
      report(`GPU device lost (unknown): ${message}`);
      device.destroy();
    },
  };
}

/**
 * Invocations per SIMD vector of a CPU adapter: the vector width its
 * description names ("llvmpipe (LLVM 15.0.6, 256 bits)" → 8), else, on a
 * software adapter, its subgroup size (a CPU driver's subgroup is one SIMD
 * vector: SwiftShader reports 4, lavapipe 8 or 16 as its width); 0 on GPUs
 * and where neither is known.
 */
export function cpuLanesOf(
  info: { description?: string; subgroupMinSize?: number },
  isFallback: boolean,
): number {
  const bits = Number(/\b(\d+) bits\)/.exec(info.description ?? "")?.[1] ?? 0);
  if (bits > 0) return bits / 32;
  const sub = info.subgroupMinSize;
  return isFallback && typeof sub === "number" && sub > 0 ? sub : 0;
}

/** The adapter as one line for people: its name, "(software)" after a CPU adapter's. */
export function adapterLabel(gpu: Gpu): string {
  return gpu.adapterName + (gpu.isFallback ? " (software)" : "");
}
