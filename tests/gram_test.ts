import assert from "node:assert/strict";
import { Program } from "../src/gpu/scheduler.ts";
import { view } from "../src/ops/context.ts";
import { gram, gramGeometry } from "../src/ops/gram.ts";
import { randomFloats, readFloats, relL2, testContext } from "./helpers.ts";

// 24 channels: the default tile side (16) does not divide them, so it is halved.
for (const [c, h, w] of [[24, 9, 13], [32, 23, 31], [16, 1, 7]]) {
  Deno.test(`gram of ${c}×${h}×${w} features matches a CPU F·Fᵀ/N`, async () => {
    const { ctx, scope, gpu } = await testContext();
    const np = h * w;
    const f = randomFloats(c * np, 31);
    const want = new Float64Array(c * c);
    for (let i = 0; i < c; i++) {
      for (let j = 0; j < c; j++) {
        let acc = 0;
        for (let p = 0; p < np; p++) acc += f[i * np + p] * f[j * np + p];
        want[i * c + j] = acc / (c * np);
      }
    }
    const geo = gramGeometry(ctx, c, np);
    assert.equal(c % geo.T, 0);
    const g = scope.floats(c * c, "g");
    const prog = new Program(gpu.device);
    await gram(ctx, scope, prog, {
      label: "t",
      c,
      npix: np,
      f: view(ctx.upload(scope, f, "f")),
      scratch: scope.floats(geo.scratch, "scratch"),
      gram: view(g),
    });
    const enc = gpu.device.createCommandEncoder();
    prog.encode(enc);
    gpu.device.queue.submit([enc.finish()]);
    const got = await readFloats(gpu.device, g, 0, c * c);
    assert.ok(relL2(got, want) < 1e-6, `rel err ${relL2(got, want)}`);
    scope.dispose();
  });
}
