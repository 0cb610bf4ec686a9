import assert from "node:assert/strict";
import { createStylizer, TAP_NAMES, type TapName } from "../mod.ts";
import type { Engine } from "../src/engine/model/stylizer.ts";
import { readSafetensors, relL2 } from "./helpers.ts";
import { golden as goldenPath, weightsPath } from "./data.ts";

const weights = await weightsPath();
const golden = readSafetensors(goldenPath("forward")).tensors;
const stylizer = await createStylizer({ weights, tilesFile: false }) as Engine;

for (const tag of ["photo", "noise"]) {
  Deno.test(`forward: every tap of ${tag} matches the PyTorch oracle within 1e-4`, async () => {
    const input = golden.get(`${tag}/input`)!;
    const got = await stylizer.features(input);
    for (const tap of TAP_NAMES) {
      const want = golden.get(`${tag}/${tap}`)!;
      const t = got[tap]!;
      assert.deepEqual(t.shape, want.shape, `${tap} shape`);
      const err = relL2(t.data, want.data);
      assert.ok(err <= 1e-4, `${tag}/${tap}: relative L2 error ${err}`);
    }
  });
}

Deno.test("forward: a second pass to fire9 at the same size allocates no GPU buffer", async () => {
  const input = golden.get("noise/input")!;
  await stylizer.features(input, ["fire9"]);
  const before = stylizer.poolStats.allocations;
  const compiles = stylizer.pipelineStats.compiles;
  await stylizer.features(input, ["fire9"]);
  assert.equal(stylizer.poolStats.allocations, before);
  assert.equal(stylizer.pipelineStats.compiles, compiles);
});

Deno.test("forward: a 25×27 image has every tap; a 23×40 image lacks fire6+ with a clear error", async () => {
  const mk = (h: number, w: number) => ({
    shape: [1, 3, h, w],
    data: Float32Array.from({ length: 3 * h * w }, (_, i) => Math.sin(i) * 100),
  });
  const all = await stylizer.features(mk(25, 27));
  assert.deepEqual(Object.keys(all), [...TAP_NAMES]);
  assert.deepEqual(all.fire9!.shape, [1, 512, 1, 1]);
  const small = await stylizer.features(mk(23, 40));
  assert.deepEqual(Object.keys(small), ["conv1", "fire2", "fire3", "fire4", "fire5"]);
  await assert.rejects(
    () => stylizer.features(mk(23, 40), ["fire6" as TapName]),
    /fire6 does not exist for a 23×40 image/,
  );
});

Deno.test("forward: no GPU validation errors were raised", () => {
  assert.deepEqual(stylizer.gpu.errors, []);
});

globalThis.addEventListener("unload", () => stylizer.dispose());
