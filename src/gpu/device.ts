/**
 * Adapter and device acquisition. Asks for the adapter's real limits (the
 * WebGPU defaults are much smaller: 128 MiB storage bindings instead of 2 GiB
 * on large GPUs, 16 KiB of workgroup memory) and the optional features the
 * kernels can use.
 * @module
 */
import { join } from "node:path";
import { cacheDir, defaultEnv } from "../cache_dir.ts";
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
   * Invocations per SIMD vector of a CPU adapter that names its vector width
   * (lavapipe: "… 256 bits" → 8, "… 512 bits" → 16); 0 when unknown (GPUs).
   */
  cpuLanes: number;
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
 * The AVX-512 subsets lavapipe's 512-bit code needs, as bits of CPUID leaf 7's
 * EBX: F (16), DQ (17), BW (30), VL (31).
 */
const AVX512_EBX_BITS = [16, 17, 30, 31];

/** Whether `descriptor` is granted already (never prompts: an optimisation is not worth a question). */
function granted(descriptor: Deno.PermissionDescriptor): boolean {
  try {
    return Deno.permissions.querySync(descriptor).state === "granted";
  } catch {
    return false;
  }
}

/**
 * Whether the CPU has AVX-512 (F, DQ, BW, VL) usable, asked of glibc's
 * `__x86_get_cpuid_feature_leaf` (its <sys/platform/x86.h> API; with
 * --allow-ffi), or else read from /proc/cpuinfo (which Deno opens only with
 * --allow-all); false when neither answers. Never prompts for a permission.
 */
export function hasAvx512(): boolean {
  try {
    if (!granted({ name: "ffi" })) throw new Error("no FFI permission");
    const lib = Deno.dlopen("libc.so.6", {
      __x86_get_cpuid_feature_leaf: { parameters: ["u32"], result: "pointer" },
    });
    try {
      // struct cpuid_feature { cpuid: u32[4]; active: u32[4] } of leaf index 1
      // (CPUID_INDEX_7); `active` has the features the OS lets programs use.
      const leaf = lib.symbols.__x86_get_cpuid_feature_leaf(1);
      if (leaf) {
        const ebx = new Deno.UnsafePointerView(leaf).getUint32(20);
        return AVX512_EBX_BITS.every((b) => (ebx >>> b) & 1);
      }
    } finally {
      lib.close();
    }
  } catch {
    // No FFI permission, not glibc ≥ 2.33: try /proc/cpuinfo.
  }
  try {
    if (!granted({ name: "read", path: "/proc/cpuinfo" })) return false;
    const text = Deno.readTextFileSync("/proc/cpuinfo");
    const flags = new Set((/^flags\s*:(.*)$/m.exec(text)?.[1] ?? "").trim().split(/\s+/));
    return ["avx512f", "avx512dq", "avx512bw", "avx512vl"].every((f) => flags.has(f));
  } catch {
    return false;
  }
}

let driverConfigured = false;

/**
 * Lets lavapipe (Mesa's Vulkan CPU driver) run 16 invocations per SIMD vector
 * on CPUs with AVX-512: it uses 256-bit vectors unless `LP_NATIVE_VECTOR_WIDTH`
 * says otherwise, and with 512 the kernels run faster (bench/NOTES.md, row
 * 62). The driver reads its environment once per process, so this runs before
 * the first adapter request; it changes nothing when the variable is set
 * already (`LP_NATIVE_VECTOR_WIDTH=256` keeps the driver's default), off
 * x86-64 Linux, on CPUs without AVX-512 ({@link hasAvx512}), or without the
 * permission to set variables (it never prompts for one). Mesa's shader cache does not tell kernels
 * compiled at 256 bits from 512-bit ones, so unless `MESA_SHADER_CACHE_DIR` is
 * set this also points it at a directory of stylize's own cache
 * (`mesa-avx512`). Returns the width set, or 0 when it left the driver alone.
 *
 * @param env environment lookup (tests); defaults to `Deno.env.get`.
 * @param avx512 whether the CPU has AVX-512 (tests); asked when omitted.
 * @param setEnv sets a variable (tests); defaults to `Deno.env.set` where
 *   --allow-env is granted.
 */
export function configureCpuDriver(
  env: (name: string) => string | undefined = defaultEnv,
  avx512?: boolean,
  setEnv?: (name: string, value: string) => void,
): number {
  try {
    if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") return 0;
    if (!setEnv && !granted({ name: "env" })) return 0;
    const set = setEnv ?? ((k: string, v: string) => Deno.env.set(k, v));
    if (env("LP_NATIVE_VECTOR_WIDTH") !== undefined) return 0;
    if (!(avx512 ?? hasAvx512())) return 0;
    if (env("MESA_SHADER_CACHE_DIR") === undefined) {
      const cache = cacheDir(env);
      if (!cache) return 0;
      set("MESA_SHADER_CACHE_DIR", join(cache, "mesa-avx512"));
    }
    set("LP_NATIVE_VECTOR_WIDTH", "512");
    return 512;
  } catch {
    return 0;
  }
}

/**
 * Requests a high-performance adapter and a device with the adapter's full
 * limits and the optional features `timestamp-query` (where present); the
 * first call configures lavapipe first ({@link configureCpuDriver}).
 * Throws {@link UserError} when no adapter is available.
 */
export async function acquireGpu(): Promise<Gpu> {
  // Before touching navigator.gpu, whose getter already starts the driver.
  if (!driverConfigured) {
    driverConfigured = true;
    configureCpuDriver();
  }
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
    cpuLanes: Number(/\b(\d+) bits\)/.exec(info.description ?? "")?.[1] ?? 0) / 32,
    hasTimestamps: device.features.has("timestamp-query"),
    limits: device.limits,
    lost,
  };
}
