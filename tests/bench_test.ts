import assert from "node:assert/strict";
import { repoPath, weightsPath } from "./data.ts";

const BENCH = repoPath("bench", "bench.ts");

/** Runs bench/bench.ts with `args` and parses its --json lines. */
async function bench(args: string[]): Promise<Record<string, unknown>[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", BENCH, "--json", "--iters", "3", "--warmup", "1", ...args],
    env: {
      STYLIZE_WEIGHTS: await weightsPath(),
      XDG_RUNTIME_DIR: "/tmp",
      NO_COLOR: "1",
    },
    stdin: "null",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, stderr);
  return new TextDecoder().decode(out.stdout).trim().split("\n").map((l) => JSON.parse(l));
}

// The adapter's default profile (timestamps where it has them), and fences forced.
for (const profile of [undefined, "fences"]) {
  Deno.test(`bench --json (${profile ?? "default"} profile): the issue's fields, per-kernel times, no allocation after the first iteration`, async () => {
    const [r] = await bench(["--sizes", "48x64", ...(profile ? ["--profile", profile] : [])]);
    assert.deepEqual(r.size, [48, 64]);
    for (
      const k of [
        "ms_per_iter",
        "ms_per_iter_readback",
        "ms_min",
        "ms_max",
        "gflops",
        "peak_bytes",
        "bytes_per_pixel",
      ]
    ) {
      assert.ok(typeof r[k] === "number" && (r[k] as number) > 0, `${k}: ${r[k]}`);
    }
    assert.ok((r.ms_min as number) <= (r.ms_per_iter as number));
    assert.ok((r.ms_per_iter as number) <= (r.ms_max as number));
    assert.equal(typeof r.adapter, "string");
    if (profile) assert.equal(r.profile, profile);
    else assert.ok(r.profile === "timestamps" || r.profile === "fences");
    assert.equal(r.allocations_after_first_iteration, 0);
    const kernels = r.kernels as { name: string; ms: number; gflop: number }[];
    const names = kernels.map((k) => k.name);
    for (const name of ["conv1", "fire5.style.gram.back", "adam", "pool1.back"]) {
      assert.ok(names.includes(name), `${name} missing from ${names.join(", ")}`);
    }
    assert.ok(kernels.every((k) => Number.isFinite(k.ms) && k.ms >= 0 && k.gflop >= 0));
  });
}

Deno.test("bench usage errors: one line on stderr and exit code 2", async () => {
  for (const args of [["--sizes", "12"], ["--iters", "x"], ["--bogus"], ["--tiles", "{"]]) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", BENCH, ...args],
      env: { NO_COLOR: "1" },
      stdin: "null",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr).trim();
    assert.equal(out.code, 2, `${args.join(" ")}: ${stderr}`);
    assert.match(stderr, /^bench: [^\n]+$/, args.join(" "));
  }
});
