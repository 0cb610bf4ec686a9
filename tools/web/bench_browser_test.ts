import assert from "node:assert/strict";
import { repoPath, weightsPath } from "../../tests/data.ts";

const BENCH = repoPath("bench", "bench.ts");
const ROOT_CONFIG = repoPath("deno.json");

Deno.test("bench --browser: Chromium's ms per iteration and adapter beside Deno's, same size", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--config",
      ROOT_CONFIG,
      BENCH,
      "--json",
      "--browser",
      "--sizes",
      "48x64",
      "--iters",
      "3",
      "--warmup",
      "1",
      "--kernels",
      "0",
    ],
    env: { STYLIZE_WEIGHTS: await weightsPath(), NO_COLOR: "1" },
    stdin: "null",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const r = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
  assert.deepEqual(r.size, [48, 64]);
  const b = r.browser;
  assert.ok(b, "no browser result");
  assert.match(b.adapter, /\S/);
  assert.ok(b.ms_per_iter > 0 && b.first_iteration_ms >= b.ms_per_iter, JSON.stringify(b));
  assert.ok(Math.abs(b.ratio - b.ms_per_iter / r.ms_per_iter) < 1e-9);
});
