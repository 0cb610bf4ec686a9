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
  /** Whether `timestamp-query` was granted (per-kernel GPU timing). */
  hasTimestamps: boolean;
  /** The limits granted to the device (the adapter's own). */
  limits: GPUSupportedLimits;
  /** Resolves with a message if the device is lost other than by `destroy()` (never rejects). */
  lost: Promise<string>;
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

/**
 * Requests a high-performance adapter and a device with the adapter's full
 * limits and the optional features `timestamp-query` (where present).
 * Throws {@link UserError} when no adapter is available.
 */
export async function acquireGpu(): Promise<Gpu> {
  if (!("gpu" in navigator) || !navigator.gpu) throw new UserError(NO_ADAPTER_HINT);
  let adapter: GPUAdapter | null = null;
  try {
    adapter = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
  } catch (e) {
    throw new UserError(`${NO_ADAPTER_HINT} (${(e as Error).message})`);
  }
  if (!adapter) throw new UserError(NO_ADAPTER_HINT);
  const requiredLimits: Record<string, number> = {};
  for (const name of WANTED_LIMITS) {
    const v = (adapter.limits as unknown as Record<string, number>)[name];
    if (typeof v === "number") requiredLimits[name] = v;
  }
  const requiredFeatures: GPUFeatureName[] = [];
  if (adapter.features.has("timestamp-query")) requiredFeatures.push("timestamp-query");
  const device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  const info = adapter.info;
  const adapterName = [info.description, info.vendor && `vendor ${info.vendor}`]
    .filter((s) => s).join(", ") || "unknown adapter";
  // A device destroyed on purpose (dispose) is not reported: that promise never settles.
  const lost = device.lost.then((i) =>
    i.reason === "destroyed"
      ? new Promise<string>(() => {})
      : `GPU device lost (${i.reason || "unknown reason"}): ${i.message}`
  );
  const errors: string[] = [];
  device.addEventListener("uncapturederror", (e) => {
    const msg = (e as GPUUncapturedErrorEvent).error.message;
    errors.push(msg);
    console.error(`GPU error: ${msg}`);
  });
  const adapterKey = [info.vendor, info.architecture, info.device, info.description].join("|");
  return {
    errors,
    device,
    adapterName,
    adapterKey,
    isFallback: Boolean((info as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter),
    hasTimestamps: device.features.has("timestamp-query"),
    limits: device.limits,
    lost,
  };
}
