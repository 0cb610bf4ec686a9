import assert from "node:assert/strict";
import { Program } from "../src/engine/gpu/scheduler.ts";
import { view } from "../src/engine/ops/context.ts";
import { TEMPORAL_PARTS, temporalLoss } from "../src/engine/ops/temporal.ts";
import { randomFloats, readFloats, relErr, relL2, runProgram, testContext } from "./helpers.ts";

/** Places `c` planes of `np` values `plane` apart from element `at`, NaN between. */
function spread(data: Float32Array, c: number, np: number, plane: number, at: number) {
  const out = new Float32Array(at + c * plane).fill(NaN);
  for (let k = 0; k < c; k++) out.set(data.subarray(k * np, (k + 1) * np), at + k * plane);
  return out;
}

for (const banded of [false, true]) {
  const what = banded ? "a band of rows with plane strides and offsets" : "a whole image, dense";
  Deno.test(`temporalLoss on ${what}: loss and gradient match a float64 CPU reference within 1e-6`, async () => {
    const { ctx, scope, gpu } = await testContext();
    const [h, w] = [29, 37];
    const [y0, rows] = banded ? [7, 13] : [0, h];
    const n = rows * w;
    // Preprocessed pixel values (0..255 less the mean) and weights 0, 1 or between.
    const x = randomFloats(3 * n, 1, -120, 130);
    const omega = randomFloats(3 * n, 2, -120, 130);
    const cAll = randomFloats(h * w, 3, 0, 1).map((v, i) => i % 4 === 0 ? 0 : i % 4 === 1 ? 1 : v);
    // Where c = 0, ω may hold anything (the warp's undefined samples): NaN here.
    for (let i = 0; i < n; i++) if (cAll[y0 * w + i] === 0) omega[i] = NaN;
    const init = randomFloats(3 * n, 4);
    const weight = 0.0031;
    let loss = 0;
    const inc = new Float64Array(3 * n);
    for (let ch = 0; ch < 3; ch++) {
      for (let i = 0; i < n; i++) {
        const c = cAll[y0 * w + i];
        if (c === 0) continue;
        const d = x[ch * n + i] - omega[ch * n + i];
        loss += weight * c * d * d;
        inc[ch * n + i] = 2 * weight * c * d;
      }
    }
    const [xPlane, gPlane, oPlane] = banded ? [n + 3, n + 5, n + 1] : [n, n, n];
    const [xAt, gAt, oAt] = banded ? [4, 8, 2] : [0, 0, 0];
    const grad = ctx.upload(scope, spread(init, 3, n, gPlane, gAt), "grad", false);
    const parts = scope.floats(TEMPORAL_PARTS + 3, "parts");
    const prog = new Program(gpu.device);
    await temporalLoss(ctx, scope, prog, {
      label: "temporal",
      w,
      y0,
      rows,
      x: view(ctx.upload(scope, spread(x, 3, n, xPlane, xAt), "x", false), xAt, xPlane),
      omega: view(ctx.upload(scope, spread(omega, 3, n, oPlane, oAt), "o", false), oAt, oPlane),
      c: view(ctx.upload(scope, cAll, "c", false)),
      grad: view(grad, gAt, gPlane),
      weight,
      parts: view(parts, 3),
    });
    runProgram(gpu.device, prog);
    const all = await readFloats(gpu.device, grad, gAt, 3 * gPlane);
    const gotInc = new Float64Array(3 * n);
    for (let ch = 0; ch < 3; ch++) {
      for (let i = 0; i < n; i++) gotInc[ch * n + i] = all[ch * gPlane + i] - init[ch * n + i];
      // The padding between planes is left alone.
      if (banded) assert.ok(Number.isNaN(all[ch * gPlane + n]), "plane padding written");
    }
    const gErr = relL2(gotInc, inc);
    assert.ok(gErr < 1e-6, `gradient: rel err ${gErr}`);
    const sum = (await readFloats(gpu.device, parts, 3, TEMPORAL_PARTS)).reduce((a, b) => a + b, 0);
    assert.ok(relErr(sum, loss) < 1e-6, `loss ${sum} vs ${loss} (rel err ${relErr(sum, loss)})`);
    scope.dispose();
  });
}
