import assert from "node:assert/strict";
import { fenceProfile, Program } from "../src/engine/gpu/scheduler.ts";
import { view } from "../src/engine/ops/context.ts";
import { maxPool, poolOut } from "../src/engine/ops/pool.ts";
import { randomFloats, readFloats, testContext } from "./helpers.ts";

Deno.test("fenceProfile times every launch and runs the steps in order, clears included", async () => {
  const { ctx, scope, gpu } = await testContext();
  const shape = { c: 2, h: 9, w: 11 };
  const n = shape.c * poolOut(shape.h) * poolOut(shape.w);
  const x = ctx.upload(scope, randomFloats(shape.c * shape.h * shape.w, 3), "x");
  const out = scope.floats(n, "out");
  const argmax = scope.acquire(n * 4, GPUBufferUsage.STORAGE, "argmax");
  const both = scope.floats(2 * n, "both");
  // Pool into `out`, copy it to the first half of `both`, clear `out`, pool
  // into the second half: in order, both halves agree and `out` is zero.
  const prog = new Program(gpu.device);
  await maxPool(ctx, scope, prog, { label: "first", shape, x: view(x), out: view(out), argmax });
  prog.copy("copy", out, 0, both, 0, n * 4);
  prog.clear("clear", out);
  await maxPool(ctx, scope, prog, {
    label: "second",
    shape,
    x: view(x),
    out: view(both, n),
    argmax,
  });
  const times = await fenceProfile(gpu.device, [prog]);
  assert.deepEqual(times.map((t) => t.label), ["first", "second"]);
  for (const t of times) assert.ok(Number.isFinite(t.ms) && t.ms >= 0, `${t.label}: ${t.ms} ms`);
  assert.ok((await readFloats(gpu.device, out, 0, n)).every((v) => v === 0));
  const first = await readFloats(gpu.device, both, 0, n);
  assert.ok(first.some((v) => v !== 0));
  assert.deepEqual(first, await readFloats(gpu.device, both, n, n));
  scope.dispose();
});
