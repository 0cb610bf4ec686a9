import assert from "node:assert/strict";
import { join } from "node:path";
import { cpuDriver, cpuDriverPlan, hasAvx512, preparePlan, withEnv } from "../src/deno/driver.ts";
import { cpuLanesOf } from "../src/engine/gpu/device.ts";
import { testGpu } from "./helpers.ts";

const onX86Linux = Deno.build.os === "linux" && Deno.build.arch === "x86_64";
/** Said in the names of the tests that only x86-64 Linux runs (lavapipe's AVX-512 plan). */
const X86_ONLY = onX86Linux ? "" : " (not run: x86-64 Linux only)";

Deno.test({
  name:
    "cpuDriverPlan asks lavapipe for 512-bit vectors, with a shader cache of its own, on AVX-512 CPUs" +
    X86_ONLY,
  ignore: !onX86Linux,
  fn() {
    const env = (vars: Record<string, string>) => (k: string) => vars[k];
    assert.deepEqual(cpuDriverPlan(env({ STYLIZE_CACHE_DIR: "/c" }), true), {
      vars: { MESA_SHADER_CACHE_DIR: join("/c", "mesa-avx512"), LP_NATIVE_VECTOR_WIDTH: "512" },
      cacheDir: join("/c", "mesa-avx512"),
    });
    // The user's own shader cache directory is theirs to keep.
    assert.deepEqual(cpuDriverPlan(env({ HOME: "/h", MESA_SHADER_CACHE_DIR: "/m" }), true), {
      vars: { LP_NATIVE_VECTOR_WIDTH: "512" },
    });
  },
});

Deno.test({
  name:
    "cpuDriverPlan leaves the driver alone without AVX-512, when the width is set, or with no cache directory" +
    X86_ONLY,
  // Elsewhere it returns before looking at any of these.
  ignore: !onX86Linux,
  fn() {
    const env = (vars: Record<string, string>) => (k: string) => vars[k];
    const none = { vars: {} };
    assert.deepEqual(cpuDriverPlan(env({ HOME: "/h" }), false), none);
    assert.deepEqual(cpuDriverPlan(env({ HOME: "/h", LP_NATIVE_VECTOR_WIDTH: "256" }), true), none);
    assert.deepEqual(cpuDriverPlan(env({}), true), none);
  },
});

Deno.test("preparePlan makes the whole shader-cache path Mesa is pointed at, parents included", async () => {
  const root = await Deno.makeTempDir();
  try {
    const dir = join(root, "no", "such", "parent", "mesa-avx512");
    const plan = {
      vars: { MESA_SHADER_CACHE_DIR: dir, LP_NATIVE_VECTOR_WIDTH: "512" },
      cacheDir: dir,
    };
    assert.deepEqual(preparePlan(plan), plan);
    assert.ok(Deno.statSync(dir).isDirectory);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("preparePlan leaves the driver alone when the shader-cache directory cannot be made", async () => {
  const root = await Deno.makeTempDir();
  try {
    // A file where a parent directory should be: no user, root included, can make it.
    await Deno.writeTextFile(join(root, "file"), "");
    const dir = join(root, "file", "mesa-avx512");
    const plan = {
      vars: { MESA_SHADER_CACHE_DIR: dir, LP_NATIVE_VECTOR_WIDTH: "512" },
      cacheDir: dir,
    };
    assert.deepEqual(preparePlan(plan), { vars: {} });
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("withEnv sets the variables only while its function runs, then restores them", async () => {
  const name = "STYLIZE_TEST_WITH_ENV";
  const kept = "STYLIZE_TEST_WITH_ENV_KEPT";
  Deno.env.set(kept, "before");
  try {
    const seen = await withEnv(
      { [name]: "x", [kept]: "during" },
      () => Promise.resolve([Deno.env.get(name), Deno.env.get(kept)]),
    );
    assert.deepEqual(seen, ["x", "during"]);
    assert.equal(Deno.env.get(name), undefined);
    assert.equal(Deno.env.get(kept), "before");
    // Restored on a throw too.
    await assert.rejects(withEnv({ [name]: "y" }, () => Promise.reject(new Error("boom"))));
    assert.equal(Deno.env.get(name), undefined);
  } finally {
    Deno.env.delete(kept);
  }
});

Deno.test("acquiring the GPU leaves no driver variable behind for child processes", async () => {
  // In a process of its own: this one has acquired its GPU long before.
  const code = `import { acquireDenoGpu, cpuDriver } from ${
    JSON.stringify(new URL("../src/deno/driver.ts", import.meta.url).href)
  };
    const names = ["LP_NATIVE_VECTOR_WIDTH", "MESA_SHADER_CACHE_DIR"];
    const env = () => names.map((k) => Deno.env.get(k) ?? null);
    const before = env();
    const gpu = await acquireDenoGpu();
    const lines = new TextDecoder().decode((await new Deno.Command("env").output()).stdout)
      .split(String.fromCharCode(10));
    const seen = names.map((k) => lines.find((l) => l.startsWith(k + "="))?.slice(k.length + 1) ?? null);
    console.log(JSON.stringify({ before, after: env(), child: seen, set: cpuDriver().vars }));
    gpu.device.destroy();`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", code],
    env: { XDG_RUNTIME_DIR: "/tmp" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const r = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
  assert.deepEqual(r.after, r.before);
  assert.deepEqual(r.child, r.before);
  // Where the plan sets them (x86-64 Linux with AVX-512), they were set while the GPU was asked for.
  if (Object.keys(r.set).length > 0) assert.equal(r.before[0], null, "the width was the user's");
});

const FALLBACK = (await testGpu()).isFallback;

Deno.test({
  name: "the adapter's lane count is its SIMD width: lavapipe's the one the driver plan chose, " +
    "another software adapter's its subgroup size" +
    (FALLBACK ? "" : " (not run: the adapter is not a CPU one)"),
  ignore: !FALLBACK,
  async fn() {
    const gpu = await testGpu();
    const adapter = await withEnv(cpuDriver().vars, () => navigator.gpu.requestAdapter());
    const info = adapter!.info as { subgroupMinSize?: number };
    if (/^llvmpipe\b/.test(gpu.adapterName)) {
      // The plan's width, or the user's, or lavapipe's own default of 256.
      const bits = Number(
        cpuDriver().vars.LP_NATIVE_VECTOR_WIDTH ?? Deno.env.get("LP_NATIVE_VECTOR_WIDTH") ?? 256,
      );
      assert.equal(gpu.cpuLanes, bits / 32, gpu.adapterName);
    }
    // lavapipe's subgroups are one vector too; SwiftShader names no width (4 lanes: SSE).
    if (info.subgroupMinSize !== undefined) assert.equal(gpu.cpuLanes, info.subgroupMinSize);
    assert.ok(gpu.cpuLanes >= 4, `${gpu.adapterName}: ${gpu.cpuLanes} lanes`);
  },
});

Deno.test("cpuLanesOf: the width a description names, else a software adapter's subgroup size, else 0", () => {
  const lavapipe = "llvmpipe (LLVM 15.0.6, 512 bits)";
  assert.equal(cpuLanesOf({ description: lavapipe, subgroupMinSize: 16 }, true), 16);
  assert.equal(cpuLanesOf({ description: "llvmpipe (LLVM 15.0.6, 256 bits)" }, true), 8);
  assert.equal(
    cpuLanesOf({ description: "SwiftShader Device (Subzero)", subgroupMinSize: 4 }, true),
    4,
  );
  assert.equal(cpuLanesOf({ description: "SwiftShader Device (Subzero)" }, true), 0);
  // A GPU's subgroups are not CPU lanes.
  assert.equal(cpuLanesOf({ description: "NVIDIA H100", subgroupMinSize: 32 }, false), 0);
});

Deno.test({
  name:
    "cpuDriver acts with --allow-env, --allow-ffi and --allow-write, and without one leaves the driver alone, asking nothing" +
    X86_ONLY,
  ignore: !onX86Linux,
  async fn() {
    const code = `import { cpuDriver } from ${
      JSON.stringify(new URL("../src/deno/driver.ts", import.meta.url).href)
    }; console.log(cpuDriver().vars.LP_NATIVE_VECTOR_WIDTH ?? "0");`;
    const avx512 = hasAvx512();
    const home = await Deno.makeTempDir();
    try {
      for (
        const [flags, want] of [
          [["--allow-ffi", "--allow-read", "--allow-write"], "0"],
          [["--allow-env", "--allow-read", "--allow-write"], "0"],
          [["--allow-env", "--allow-ffi", "--allow-read"], "0"],
          [["--allow-env", "--allow-ffi", "--allow-write"], avx512 ? "512" : "0"],
        ] as const
      ) {
        const child = new Deno.Command(Deno.execPath(), {
          args: ["run", "--no-prompt", ...flags, "-"],
          clearEnv: true,
          env: { HOME: home, NO_COLOR: "1" },
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
    } finally {
      await Deno.remove(home, { recursive: true });
    }
  },
});
