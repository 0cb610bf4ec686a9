import assert from "node:assert/strict";
import { join } from "node:path";
import { configureCpuDriver, hasAvx512 } from "../src/gpu/device.ts";
import { testGpu } from "./helpers.ts";

/** Runs configureCpuDriver on a fake environment; returns its result and what it set. */
function configure(vars: Record<string, string>, avx512: boolean) {
  const set: Record<string, string> = {};
  const width = configureCpuDriver((k) => vars[k], avx512, (k, v) => set[k] = v);
  return { width, set };
}

const onX86Linux = Deno.build.os === "linux" && Deno.build.arch === "x86_64";

Deno.test({
  name:
    "configureCpuDriver asks lavapipe for 512-bit vectors, with a shader cache of its own, on AVX-512 CPUs",
  ignore: !onX86Linux,
  fn() {
    assert.deepEqual(configure({ STYLIZE_CACHE_DIR: "/c" }, true), {
      width: 512,
      set: { MESA_SHADER_CACHE_DIR: join("/c", "mesa-avx512"), LP_NATIVE_VECTOR_WIDTH: "512" },
    });
    // The user's own shader cache directory is theirs to keep.
    assert.deepEqual(configure({ HOME: "/h", MESA_SHADER_CACHE_DIR: "/m" }, true), {
      width: 512,
      set: { LP_NATIVE_VECTOR_WIDTH: "512" },
    });
  },
});

Deno.test({
  name:
    "configureCpuDriver leaves the driver alone without AVX-512, when the width is set, or with no cache directory",
  // Elsewhere it returns before looking at any of these.
  ignore: !onX86Linux,
  fn() {
    const none = { width: 0, set: {} };
    assert.deepEqual(configure({ HOME: "/h" }, false), none);
    assert.deepEqual(configure({ HOME: "/h", LP_NATIVE_VECTOR_WIDTH: "256" }, true), none);
    assert.deepEqual(configure({}, true), none);
  },
});

Deno.test("the adapter's lane count follows the width configureCpuDriver chose", async () => {
  const gpu = await testGpu();
  if (!gpu.isFallback) return;
  // Set by configureCpuDriver (or by hand); lavapipe's own default is 256.
  const bits = Number(Deno.env.get("LP_NATIVE_VECTOR_WIDTH") ?? 256);
  assert.equal(gpu.cpuLanes, bits / 32, gpu.adapterName);
});

Deno.test({
  name:
    "configureCpuDriver acts with --allow-env and --allow-ffi, and without either leaves the driver alone, asking nothing",
  ignore: !onX86Linux,
  async fn() {
    const code = `import { configureCpuDriver } from ${
      JSON.stringify(new URL("../src/gpu/device.ts", import.meta.url).href)
    }; console.log(configureCpuDriver());`;
    const avx512 = hasAvx512();
    for (
      const [flags, want] of [
        [["--allow-ffi", "--allow-read"], "0"],
        [["--allow-env", "--allow-read"], "0"],
        [["--allow-env", "--allow-ffi"], avx512 ? "512" : "0"],
      ] as const
    ) {
      const child = new Deno.Command(Deno.execPath(), {
        args: ["run", "--no-prompt", ...flags, "-"],
        clearEnv: true,
        env: { HOME: "/tmp", NO_COLOR: "1" },
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const w = child.stdin.getWriter();
      await w.write(new TextEncoder().encode(code));
      await w.close();
      const { code: exit, stdout, stderr } = await child.output();
      const err = new TextDecoder().decode(stderr);
      assert.equal(exit, 0, err);
      assert.equal(new TextDecoder().decode(stdout).trim(), want, `${flags}: ${err}`);
    }
  },
});
