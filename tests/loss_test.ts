import assert from "node:assert/strict";
import { Program } from "../src/gpu/scheduler.ts";
import { LOSS_PARTS, tvLoss } from "../src/ops/loss.ts";
import { view } from "../src/ops/context.ts";
import { randomFloats, readFloats, relL2, testContext } from "./helpers.ts";

/** CPU total variation: w·Σ(squared differences down and right) and its gradient. */
function tvRef(x: Float32Array, c: number, h: number, w: number, weight: number) {
  let loss = 0;
  const grad = new Float64Array(x.length);
  for (let ch = 0; ch < c; ch++) {
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < w; xx++) {
        const e = (ch * h + y) * w + xx;
        for (const [ok, o] of [[y + 1 < h, w], [xx + 1 < w, 1]] as const) {
          if (!ok) continue;
          const d = x[e + o] - x[e];
          loss += weight * d * d;
          grad[e] -= 2 * weight * d;
          grad[e + o] += 2 * weight * d;
        }
      }
    }
  }
  return { loss, grad };
}

// Widths that are not multiples of 4, rows shorter than a vec4, several channels.
for (const [c, h, w] of [[3, 7, 9], [3, 13, 5], [1, 4, 4], [2, 3, 3]]) {
  Deno.test(`tvLoss ${c}×${h}×${w}: value and gradient match a CPU total variation`, async () => {
    const { ctx, scope, gpu } = await testContext();
    const n = c * h * w;
    const x = randomFloats(n, 7);
    const init = randomFloats(n, 8);
    const ref = tvRef(x, c, h, w, 0.5);
    const grad = ctx.upload(scope, init, "grad");
    const parts = scope.floats(LOSS_PARTS, "parts");
    const prog = new Program(gpu.device);
    await tvLoss(ctx, scope, prog, {
      label: "tv",
      c,
      h,
      w,
      x: ctx.upload(scope, x, "x"),
      weight: 0.5,
      grad: view(grad),
      parts: view(parts),
    });
    const enc = gpu.device.createCommandEncoder();
    prog.encode(enc);
    gpu.device.queue.submit([enc.finish()]);
    const got = await readFloats(gpu.device, grad, 0, n);
    const loss = (await readFloats(gpu.device, parts, 0, LOSS_PARTS)).reduce((a, b) => a + b, 0);
    assert.ok(relL2(got, ref.grad.map((g, i) => g + init[i])) < 1e-6, "gradient");
    assert.ok(Math.abs(loss - ref.loss) <= 1e-5 * ref.loss, `loss ${loss} vs ${ref.loss}`);
    scope.dispose();
  });
}
