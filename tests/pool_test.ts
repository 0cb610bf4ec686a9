import assert from "node:assert/strict";
import { Program } from "../src/engine/gpu/scheduler.ts";
import { view } from "../src/engine/ops/context.ts";
import { maxPool, maxPoolBackward, poolOut } from "../src/engine/ops/pool.ts";
import { randomFloats, readFloats, runProgram, testContext, uploadTextured } from "./helpers.ts";

Deno.test("poolOut follows PyTorch's ceil mode (a last window starting inside is kept)", () => {
  // ceil((n-3)/2)+1, minus one when that window would start past the end.
  assert.deepEqual([3, 4, 5, 6, 7, 8, 63, 95].map((n) => poolOut(n)), [1, 2, 2, 3, 3, 4, 31, 47]);
  assert.equal(poolOut(2), 0);
});

const cases: [number, number, boolean, boolean?][] = [
  [7, 8, false],
  [6, 9, false],
  [11, 5, false],
  [9, 21, false],
  [13, 19, true],
  [9, 21, false, true],
  [13, 19, true, true],
];
for (const [h, w, ties, tex] of cases) {
  const what = (ties ? " (values with ties: the first maximum in scan order wins)" : "") +
    (tex ? ", x fetched from a texture copy" : "");
  Deno.test(`max pool ${h}×${w}: forward and backward match a CPU ceil-mode pool${what}`, async () => {
    const { ctx, scope, gpu } = await testContext();
    const c = 3;
    const oh = poolOut(h);
    const ow = poolOut(w);
    const x = randomFloats(c * h * w, h * 31 + w).map((v) => ties ? Math.round(v * 2) : v);
    const dy = randomFloats(c * oh * ow, 7);
    // CPU: windows clipped at the edge; the first maximum in scan order wins.
    const y = new Float32Array(c * oh * ow);
    const dx = new Float64Array(c * h * w);
    for (let ch = 0; ch < c; ch++) {
      for (let oy = 0; oy < oh; oy++) {
        for (let ox = 0; ox < ow; ox++) {
          let best = -Infinity;
          let arg = 0;
          for (let iy = 2 * oy; iy < Math.min(2 * oy + 3, h); iy++) {
            for (let ix = 2 * ox; ix < Math.min(2 * ox + 3, w); ix++) {
              const v = x[(ch * h + iy) * w + ix];
              if (v > best) [best, arg] = [v, iy * w + ix];
            }
          }
          const o = (ch * oh + oy) * ow + ox;
          y[o] = best;
          dx[ch * h * w + arg] += dy[o];
        }
      }
    }
    const out = scope.floats(y.length, "y");
    const argmax = scope.acquire(y.length * 4, GPUBufferUsage.STORAGE, "argmax");
    const gx = scope.floats(dx.length, "dx");
    const prog = new Program(gpu.device);
    const shape = { c, h, w };
    // With a texture, x sits 4 floats into its buffer.
    const at = tex ? 4 : 0;
    const xData = new Float32Array(at + x.length);
    xData.set(x, at);
    const { buffer: xb, tex: xTex } = uploadTextured(ctx, scope, prog, xData, "x", tex ?? false);
    await maxPool(ctx, scope, prog, {
      label: "pool",
      shape,
      x: view(xb, at),
      out: view(out),
      argmax,
      xTex,
    });
    await maxPoolBackward(ctx, scope, prog, {
      label: "pool.back",
      shape,
      dy: view(ctx.upload(scope, dy, "dy")),
      argmax,
      dx: view(gx),
    });
    runProgram(gpu.device, prog);
    assert.deepEqual(await readFloats(gpu.device, out, 0, y.length), y);
    const got = await readFloats(gpu.device, gx, 0, dx.length);
    got.forEach((v, i) => assert.ok(Math.abs(v - dx[i]) < 1e-6, `dx[${i}] ${v} vs ${dx[i]}`));
    scope.dispose();
  });
}
