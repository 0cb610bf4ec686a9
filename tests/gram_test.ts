import assert from "node:assert/strict";
import { Program } from "../src/engine/gpu/scheduler.ts";
import { DEFAULT_TILES, view } from "../src/engine/ops/context.ts";
import { gram, GRAM_LOSS_PARTS, gramGeometry, type GramOptions } from "../src/engine/ops/gram.ts";
import { randomFloats, readFloats, relL2, runProgram, testContext } from "./helpers.ts";

type TestContext = Awaited<ReturnType<typeof testContext>>;

/** Records gram() over features `f` [c][np] with the options in `more`, and submits it. */
async function submitGram(
  { ctx, scope, gpu }: TestContext,
  c: number,
  np: number,
  f: Float32Array<ArrayBuffer>,
  more: Pick<GramOptions, "gram" | "loss">,
): Promise<void> {
  const prog = new Program(gpu.device);
  await gram(ctx, scope, prog, {
    label: "t",
    c,
    npix: np,
    f: view(ctx.upload(scope, f, "f")),
    scratch: scope.floats(gramGeometry(ctx, c, np).scratch, "scratch"),
    ...more,
  });
  runProgram(gpu.device, prog);
}

/** F·Fᵀ/N on the CPU, in doubles, for features `f` [c][np]. */
function cpuGram(f: Float32Array, c: number, np: number): Float64Array {
  const want = new Float64Array(c * c);
  for (let i = 0; i < c; i++) {
    for (let j = 0; j < c; j++) {
      let acc = 0;
      for (let p = 0; p < np; p++) acc += f[i * np + p] * f[j * np + p];
      want[i * c + j] = acc / (c * np);
    }
  }
  return want;
}

// 24 channels: the default tile side (16) does not divide them, so it is halved.
for (const [c, h, w] of [[24, 9, 13], [32, 23, 31], [16, 1, 7]]) {
  Deno.test(`gram of ${c}×${h}×${w} features matches a CPU F·Fᵀ/N`, async () => {
    const t = await testContext();
    const { ctx, scope, gpu } = t;
    const np = h * w;
    const f = randomFloats(c * np, 31);
    const want = cpuGram(f, c, np);
    const geo = gramGeometry(ctx, c, np);
    assert.equal(c % geo.T, 0);
    const g = scope.floats(c * c, "g");
    await submitGram(t, c, np, f, { gram: view(g) });
    const got = await readFloats(gpu.device, g, 0, c * c);
    assert.ok(relL2(got, want) < 1e-6, `rel err ${relL2(got, want)}`);
    scope.dispose();
  });
}

// A layer of at least BIG pixel chunks, F in a texture, gets tiles of twice
// the side (here 8 → 16 for 12 chunks of 64 pixels, BIG 4; small tiles
// compile fast), and they sum what the CPU does; a layer with fewer chunks,
// or F read from its buffer, keeps T.
Deno.test("gram of a layer with many pixel chunks doubles its tile side and matches a CPU F·Fᵀ/N", async () => {
  const t = await testContext({ ...DEFAULT_TILES, gram: { T: 8, WG: 8, CHUNK: 64, BIG: 4 } });
  const { ctx, gpu, pool } = t;
  const [c, np] = [32, 23 * 32];
  assert.equal(gramGeometry(ctx, c, np, true).T, 16);
  assert.equal(gramGeometry(ctx, c, np, false).T, 8);
  assert.equal(gramGeometry(ctx, c, 3 * 64, true).T, 8);
  const f = randomFloats(c * np, 37);
  const want = cpuGram(f, c, np);
  const g = t.scope.floats(c * c, "g");
  const fb = ctx.upload(t.scope, f, "f");
  const tex = t.scope.featureTexture(gpu.device, c * np, "f.tex")!;
  const prog = new Program(gpu.device);
  prog.copyToTexture("f.tex", fb, tex.texture);
  await gram(ctx, t.scope, prog, {
    label: "t",
    c,
    npix: np,
    f: view(fb),
    tex,
    scratch: t.scope.floats(gramGeometry(ctx, c, np, true).scratch, "scratch"),
    gram: view(g),
  });
  runProgram(gpu.device, prog);
  const got = await readFloats(gpu.device, g, 0, c * c);
  assert.ok(relL2(got, want) < 1e-6, `rel err ${relL2(got, want)}`);
  t.scope.dispose();
  ctx.destroy();
  pool.destroy();
});

// 48 channels at 16×16 tiles: three diagonal tiles and three off it; 600
// pixels: three chunks of 256, the last one partial.
Deno.test("gram with a loss and no G: w·Σ(G−A)² and dG = (4w/N)(G−A) match a CPU reference", async () => {
  const t = await testContext();
  const { ctx, scope, gpu } = t;
  const [c, np, weight] = [48, 600, 0.7];
  const geo = gramGeometry(ctx, c, np);
  assert.ok(geo.nb >= 3 && geo.nchunks >= 3, JSON.stringify(geo));
  const f = randomFloats(c * np, 5);
  // A symmetric target, as every Gram is.
  const a = randomFloats(c * c, 6);
  for (let i = 0; i < c; i++) for (let j = 0; j < i; j++) a[i * c + j] = a[j * c + i];
  const n = c * np;
  let loss = 0;
  const wantD = new Float64Array(c * c);
  for (let i = 0; i < c; i++) {
    for (let j = 0; j < c; j++) {
      let acc = 0;
      for (let p = 0; p < np; p++) acc += f[i * np + p] * f[j * np + p];
      const d = acc / n - a[i * c + j];
      loss += weight * d * d;
      wantD[i * c + j] = (4 * weight / n) * d;
    }
  }
  const dgram = scope.floats(c * c, "dgram");
  const parts = scope.floats(GRAM_LOSS_PARTS, "parts");
  await submitGram(t, c, np, f, {
    loss: { target: ctx.upload(scope, a, "a"), weight, dgram, parts: view(parts) },
  });
  const gotD = await readFloats(gpu.device, dgram, 0, c * c);
  const gotParts = await readFloats(gpu.device, parts, 0, GRAM_LOSS_PARTS);
  const gotLoss = gotParts.reduce((s, v) => s + v, 0);
  assert.ok(relL2(gotD, wantD) < 1e-5, `dG rel err ${relL2(gotD, wantD)}`);
  assert.ok(Math.abs(gotLoss - loss) < 1e-5 * loss, `loss ${gotLoss} against ${loss}`);
  scope.dispose();
});

// 713 pixels: an odd tail (1 pixel) read from the buffer; textures at most
// 256 texels on a side: 64 texels wide instead of 16; F at an offset of 8.
for (const [c, np, maxDim] of [[32, 713, 0], [48, 600, 0], [32, 2000, 256]]) {
  Deno.test(`gram partial sums from a texture copy of F (${c}×${np}${maxDim ? `, side ≤ ${maxDim}` : ""}) equal those from the buffer`, async () => {
    const t = await testContext();
    const { ctx, scope, gpu } = t;
    const plane = Math.ceil(np / 4) * 4;
    const off = 8;
    const tex = scope.featureTexture(gpu.device, off + c * plane, "f.tex", maxDim || undefined)!;
    assert.equal(tex.width, maxDim ? 64 : 16);
    const f = randomFloats(tex.floats, 17);
    const fb = ctx.upload(scope, f, "f");
    const results = [];
    for (const withTex of [false, true]) {
      const g = scope.floats(c * c, "g");
      const prog = new Program(gpu.device);
      if (withTex) prog.copyToTexture("f.tex", fb, tex.texture);
      await gram(ctx, scope, prog, {
        label: "t",
        c,
        npix: np,
        f: view(fb, off, plane),
        tex: withTex ? tex : undefined,
        scratch: scope.floats(gramGeometry(ctx, c, np, withTex).scratch, "scratch"),
        gram: view(g),
      });
      runProgram(gpu.device, prog);
      results.push(await readFloats(gpu.device, g, 0, c * c));
    }
    assert.deepEqual(results[1], results[0]);
    assert.ok(results[0].some((v) => v !== 0));
    scope.dispose();
  });
}
