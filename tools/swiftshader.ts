/**
 * `deno task test:swiftshader`: the kernel and oracle tests on a second
 * adapter, SwiftShader's Vulkan driver (the one Debian's chromium ships),
 * where `deno task test` runs everything on lavapipe. SwiftShader differs
 * from lavapipe where the engine must not assume: 4-lane subgroups, at most
 * 256 invocations per workgroup, 1 GiB bindings and buffers, 10 storage
 * buffers per stage, 256-byte binding offsets, 8192-texel textures, no
 * shader-f16; it is the adapter Chromium falls back to without a GPU.
 *
 * SwiftShader compiles kernels slowly and keeps no pipeline cache between
 * processes (nor between devices of one), so a run costs the same cold or
 * warm, and runs the subset below, which builds every entry point of every
 * kernel (tools/kernel_coverage_test.ts, run last, checks that and that
 * SwiftShader ran them):
 *
 * | test                | kernels it builds (src/engine/shaders/), what it checks                      |
 * | ------------------- | ---------------------------------------------------------------------------- |
 * | `shaders_test.ts`   | none: every .wgsl's uniform parameters                                       |
 * | `device_test.ts`    | none: the adapter as the engine sees it (software, 4 lanes)                  |
 * | `loss_test.ts`      | loss (content) against a CPU loss                                            |
 * | `pool_test.ts`      | pool (forward, backward; max and average) against a CPU pool                 |
 * | `gram_test.ts`      | gram (partial, reduce; with workgroup_sum) against a CPU Gram                |
 * | `conv_test.ts`      | pointwise, conv3x3, conv_s2_backward (with conv_common, shift4, texel)       |
 * |                     | against a CPU convolution                                                    |
 * | `adam_test.ts`      | adam, and the whole network: 20 Adam steps' losses against the oracle        |
 * | `tune_test.ts`      | pointwise, conv3x3, conv_s2_backward, gram: every tune candidate (GPU_TILES' |
 * |                     | entries among them) against the default tile                                 |
 * | `gpu_tiles_test.ts` | every kernel but adam: the whole network on GPU_TILES and the adapter's      |
 * |                     | table, forward and backward, against the oracle and each other; in tiles     |
 * |                     | against the whole image (the subset's only crop, gram collapse and loss tv)  |
 * | `warp_test.ts`      | warp against a CPU bilinear warp                                             |
 * | `temporal_test.ts`  | temporal against a float64 CPU reference                                     |
 * | `flow_test.ts`      | flow (every pass and the consistency check) on pairs with known motion       |
 *
 * Usage: `deno task test:swiftshader [--all]` (`--all`: every kernel and
 * oracle test instead). The driver is `$SWIFTSHADER_ICD`, else Debian's
 * chromium's; the summary line is deno test's. Exit codes: deno test's, or 2
 * when the driver is missing.
 * @module
 */
import { parseArgs } from "node:util";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** Repository root (the parent of tools/). */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Debian's chromium's SwiftShader Vulkan driver manifest. */
const DEFAULT_ICD = "/usr/lib/chromium/vk_swiftshader_icd.json";

/** The subset run by default (see the table above), cheapest first. */
const SUBSET = [
  "shaders_test.ts",
  "device_test.ts",
  "loss_test.ts",
  "pool_test.ts",
  "gram_test.ts",
  "conv_test.ts",
  "adam_test.ts",
  "tune_test.ts",
  "gpu_tiles_test.ts",
  "warp_test.ts",
  "temporal_test.ts",
  "flow_test.ts",
];

/** With `--all`: every test of tests/ that runs kernels or checks them against an oracle. */
const ALL = [
  ...SUBSET,
  "scheduler_test.ts",
  "forward_test.ts",
  "backward_test.ts",
  "gradcheck_test.ts",
  "avgpool_test.ts",
  "masked_test.ts",
  "tiles_test.ts",
  "schedule_test.ts",
];

/** `deno test`'s permissions: the README's test command's. */
const PERMISSIONS = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-net",
  "--allow-run",
  "--allow-sys",
  "--allow-ffi",
];

async function main(): Promise<number> {
  const { values } = parseArgs({ args: Deno.args, options: { all: { type: "boolean" } } });
  const icd = Deno.env.get("SWIFTSHADER_ICD") ?? DEFAULT_ICD;
  try {
    Deno.statSync(icd);
  } catch {
    console.error(
      `swiftshader: no driver manifest at ${icd} (install chromium, or set $SWIFTSHADER_ICD)`,
    );
    return 2;
  }
  const log = await Deno.makeTempFile({ prefix: "stylize-kernels-", suffix: ".log" });
  try {
    const tests = (values.all ? ALL : SUBSET).map((t) => join("tests", t));
    console.log(`swiftshader: ${icd}: ${tests.length} test files`);
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "test",
        ...PERMISSIONS,
        `--preload=${join("tools", "kernel_log.ts")}`,
        ...tests,
        join("tools", "kernel_coverage_test.ts"),
      ],
      cwd: ROOT,
      env: {
        // VK_DRIVER_FILES is the newer loaders' name; they prefer it when both are set.
        VK_ICD_FILENAMES: icd,
        VK_DRIVER_FILES: icd,
        STYLIZE_KERNEL_LOG: log,
        STYLIZE_KERNEL_ADAPTER: "^SwiftShader",
      },
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    return (await child.status).code;
  } finally {
    await Deno.remove(log);
  }
}

Deno.exit(await main());
