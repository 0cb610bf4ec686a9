/**
 * Deno's side of acquiring the GPU: lavapipe (Mesa's Vulkan CPU driver) asked
 * for 512-bit vectors on CPUs with AVX-512, with a shader cache of its own
 * that exists before Mesa is pointed at it, and the variables set only while
 * the adapter and device are requested (child processes never inherit them).
 * The plan is made before the adapter is known, and on any other Vulkan
 * driver (SwiftShader through `VK_ICD_FILENAMES`, a GPU's) it changes
 * nothing: the width is lavapipe's own variable, and the cache directory is
 * only opened by Mesa's device-select layer, which the Vulkan loader runs
 * with every driver (it writes an index there, as it would in Mesa's default
 * cache directory).
 * @module
 */
import { join } from "node:path";
import { acquireGpu, type Gpu } from "../engine/gpu/device.ts";
import { cacheDir, defaultEnv } from "./cache_dir.ts";

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

/** What {@link cpuDriverPlan} decided: the variables to set, and a directory they need. */
export interface CpuDriverPlan {
  /** Variables to set while the adapter is requested (empty: leave the driver alone). */
  vars: Record<string, string>;
  /** The shader-cache directory `vars` point Mesa at (created first), if any. */
  cacheDir?: string;
}

/**
 * Decides how to configure lavapipe: 16 invocations per SIMD vector on CPUs
 * with AVX-512 (it uses 256-bit vectors unless `LP_NATIVE_VECTOR_WIDTH` says
 * otherwise, and with 512 the kernels run faster: bench/NOTES.md, row 62).
 * Nothing when the variable is set already (`LP_NATIVE_VECTOR_WIDTH=256`
 * keeps the driver's default), off x86-64 Linux, or on CPUs without AVX-512
 * ({@link hasAvx512}). Mesa's shader cache does not tell kernels compiled at
 * 256 bits from 512-bit ones, so unless `MESA_SHADER_CACHE_DIR` is set the
 * plan also points it at a directory of stylize's own cache (`mesa-avx512`);
 * without a cache directory it leaves the driver alone.
 *
 * @param env environment lookup; defaults to `Deno.env.get`.
 * @param avx512 whether the CPU has AVX-512; asked when omitted.
 */
export function cpuDriverPlan(
  env: (name: string) => string | undefined = defaultEnv,
  avx512?: boolean,
): CpuDriverPlan {
  const none = { vars: {} };
  if (Deno.build.os !== "linux" || Deno.build.arch !== "x86_64") return none;
  if (env("LP_NATIVE_VECTOR_WIDTH") !== undefined) return none;
  if (!(avx512 ?? hasAvx512())) return none;
  if (env("MESA_SHADER_CACHE_DIR") !== undefined) {
    return { vars: { LP_NATIVE_VECTOR_WIDTH: "512" } };
  }
  const cache = cacheDir(env);
  if (!cache) return none;
  const dir = join(cache, "mesa-avx512");
  return { vars: { MESA_SHADER_CACHE_DIR: dir, LP_NATIVE_VECTOR_WIDTH: "512" }, cacheDir: dir };
}

/**
 * Makes the directory a plan points Mesa at (Mesa itself creates only its
 * last component, and without it runs with no shader cache at all); a plan
 * whose directory cannot be made (no permission: this never prompts) becomes
 * one that leaves the driver alone.
 */
export function preparePlan(plan: CpuDriverPlan): CpuDriverPlan {
  if (!plan.cacheDir) return plan;
  try {
    if (!granted({ name: "write", path: plan.cacheDir })) return { vars: {} };
    Deno.mkdirSync(plan.cacheDir, { recursive: true });
    return plan;
  } catch {
    return { vars: {} };
  }
}

/**
 * Runs `fn` with `vars` set in the process environment and restores every one
 * of them afterwards (to its old value, or unset), so no child process
 * started later inherits them. Without --allow-env (never prompted) it just
 * runs `fn`.
 */
export async function withEnv<T>(vars: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const names = Object.keys(vars);
  if (names.length === 0 || !granted({ name: "env" })) return await fn();
  const old = names.map((k) => [k, Deno.env.get(k)] as const);
  for (const k of names) Deno.env.set(k, vars[k]);
  try {
    return await fn();
  } finally {
    for (const [k, v] of old) v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
  }
}

let processPlan: CpuDriverPlan | null = null;

/**
 * The driver configuration of this process, decided (and its directory made)
 * on first use: lavapipe reads its vector width once per process, so every
 * later request uses the same plan.
 */
export function cpuDriver(): CpuDriverPlan {
  if (!processPlan) {
    try {
      processPlan = preparePlan(cpuDriverPlan());
    } catch {
      processPlan = { vars: {} };
    }
  }
  return processPlan;
}

/**
 * Acquires the GPU as every Deno entry point does: the adapter and device are
 * requested with this process's {@link cpuDriver} variables set, which are
 * restored right after.
 */
export function acquireDenoGpu(): Promise<Gpu> {
  const { vars } = cpuDriver();
  return acquireGpu({ around: (request) => withEnv(vars, request) });
}
