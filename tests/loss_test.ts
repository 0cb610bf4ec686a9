import assert from "node:assert/strict";
import { Program } from "../src/engine/gpu/scheduler.ts";
import { contentLoss, LOSS_PARTS } from "../src/engine/ops/loss.ts";
import { planeStride, view } from "../src/engine/ops/context.ts";
import {
  padPlanes,
  randomFloats,
  readFloats,
  relL2,
  runProgram,
  testContext,
  unpadPlanes,
} from "./helpers.ts";

// The content term in its own launch (a layer whose gradient no 1×1 launch
// writes last), on padded planes whose NaN padding must stay out of the sum.
for (const mask of [false, true]) {
  Deno.test(`contentLoss${mask ? " with the ReLU mask" : ""}: value and gradient match a CPU content loss on padded planes`, async () => {
    const { ctx, scope, gpu } = await testContext();
    const [c, h, w] = [5, 3, 7];
    const np = h * w;
    const p = planeStride(h, w); // 24: three padding pixels per plane
    const pad = (a: Float32Array, at = 0) => padPlanes(a, c, np, p, NaN, at);
    const f = randomFloats(c * np, 41);
    const target = randomFloats(c * np, 42);
    const init = randomFloats(c * np, 43);
    const weight = 0.3;
    let loss = 0;
    const want = new Float64Array(c * np);
    for (let i = 0; i < c * np; i++) {
      loss += weight * (f[i] - target[i]) ** 2;
      const g = init[i] + 2 * weight * (f[i] - target[i]);
      want[i] = mask && !(f[i] > 0) ? 0 : g;
    }
    const grad = ctx.upload(scope, pad(init, 4), "grad");
    const parts = scope.floats(LOSS_PARTS, "parts");
    const prog = new Program(gpu.device);
    await contentLoss(ctx, scope, prog, {
      label: "content",
      c,
      h,
      w,
      f: view(ctx.upload(scope, pad(f, 8), "f"), 8, p),
      target: ctx.upload(scope, pad(target), "p"),
      weight,
      grad: view(grad, 4, p),
      parts: view(parts),
      reluMask: mask,
    });
    runProgram(gpu.device, prog);
    const all = await readFloats(gpu.device, grad, 4, c * p);
    const got = unpadPlanes(all, c, np, p);
    assert.ok(relL2(got, want) < 1e-6, `gradient: rel err ${relL2(got, want)}`);
    const sum = (await readFloats(gpu.device, parts, 0, LOSS_PARTS)).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - loss) <= 1e-5 * loss, `loss ${sum} vs ${loss}`);
    scope.dispose();
  });
}
