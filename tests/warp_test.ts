import assert from "node:assert/strict";
import { Program } from "../src/engine/gpu/scheduler.ts";
import { view } from "../src/engine/ops/context.ts";
import { warp } from "../src/engine/ops/warp.ts";
import { randomFloats, readFloats, runProgram, testContext } from "./helpers.ts";

/**
 * The CPU warp in float64 (from the float32 sample position the GPU
 * computes): bilinear at (x + u, y + v) clamped to the image, inside when
 * within half a pixel of it.
 */
function cpuWarp(
  src: Float32Array,
  flow: Float32Array,
  c: number,
  h: number,
  w: number,
  cubic = false,
): { out: Float64Array; valid: Float64Array } {
  const out = new Float64Array(c * h * w);
  const valid = new Float64Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const sx = Math.fround(x + flow[i]);
      const sy = Math.fround(y + flow[h * w + i]);
      valid[i] = sx >= -0.5 && sx <= w - 0.5 && sy >= -0.5 && sy <= h - 0.5 ? 1 : 0;
      const cx = Math.min(Math.max(sx, 0), w - 1);
      const cy = Math.min(Math.max(sy, 0), h - 1);
      const [x0, y0] = [Math.floor(cx), Math.floor(cy)];
      const [x1, y1] = [Math.min(x0 + 1, w - 1), Math.min(y0 + 1, h - 1)];
      const [fx, fy] = [cx - x0, cy - y0];
      for (let ch = 0; ch < c; ch++) {
        const at = (yy: number, xx: number) => src[ch * h * w + yy * w + xx];
        if (cubic) {
          out[ch * h * w + i] = bicubicAt(at, h, w, x0, y0, fx, fy);
          continue;
        }
        const top = at(y0, x0) * (1 - fx) + at(y0, x1) * fx;
        const bot = at(y1, x0) * (1 - fx) + at(y1, x1) * fx;
        out[ch * h * w + i] = top * (1 - fy) + bot * fy;
      }
    }
  }
  return { out, valid };
}

/** Keys' cubic convolution kernel, a = −0.5 (Pillow's bicubic). */
function keys(t: number): number {
  const a = Math.abs(t);
  if (a < 1) return 1.5 * a ** 3 - 2.5 * a ** 2 + 1;
  if (a < 2) return -0.5 * a ** 3 + 2.5 * a ** 2 - 4 * a + 2;
  return 0;
}

/** The bicubic sample at (x0 + fx, y0 + fy) from the 4×4 taps around it, each clamped to the image. */
function bicubicAt(
  at: (y: number, x: number) => number,
  h: number,
  w: number,
  x0: number,
  y0: number,
  fx: number,
  fy: number,
): number {
  let v = 0;
  for (let j = -1; j <= 2; j++) {
    const yy = Math.min(Math.max(y0 + j, 0), h - 1);
    for (let k = -1; k <= 2; k++) {
      const xx = Math.min(Math.max(x0 + k, 0), w - 1);
      v += keys(j - fy) * keys(k - fx) * at(yy, xx);
    }
  }
  return v;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

Deno.test("warp: bilinear samples and validity match a CPU warp within 1e-5 (flows reaching past every border)", async () => {
  const { ctx, scope, gpu } = await testContext();
  const [c, h, w] = [3, 23, 37];
  const src = randomFloats(c * h * w, 5);
  // Up to 6 px either way: many samples land outside the image.
  const flow = randomFloats(2 * h * w, 6, -6, 6);
  // Some exact integer and zero displacements too.
  for (let i = 0; i < h * w; i += 7) [flow[i], flow[h * w + i]] = [0, Math.round(flow[i])];
  const want = cpuWarp(src, flow, c, h, w);
  const out = scope.floats(c * h * w + 8, "out");
  const valid = scope.floats(h * w + 4, "valid");
  const prog = new Program(gpu.device);
  await warp(ctx, scope, prog, {
    label: "warp",
    c,
    h,
    w,
    src: view(ctx.upload(scope, src, "src", false)),
    flow: view(ctx.upload(scope, flow, "flow", false)),
    out: view(out, 8),
    valid: view(valid, 4),
  });
  runProgram(gpu.device, prog);
  const got = await readFloats(gpu.device, out, 8, c * h * w);
  const gotValid = await readFloats(gpu.device, valid, 4, h * w);
  const err = maxAbsDiff(got, want.out);
  assert.ok(err < 1e-5, `max |gpu − cpu| = ${err}`);
  assert.deepEqual(Array.from(gotValid), Array.from(want.valid));
  const outside = want.valid.filter((v) => v === 0).length;
  assert.ok(outside > 50 && outside < h * w - 50, `${outside} samples outside: both kinds tested`);
  scope.dispose();
});

Deno.test("warp: a band of rows with plane strides, blended with a fallback by the mask (0 outside the image)", async () => {
  const { ctx, scope, gpu } = await testContext();
  const [c, h, w] = [3, 19, 26];
  const [y0, count] = [5, 9];
  const src = randomFloats(c * h * w, 11);
  const flow = randomFloats(2 * h * w, 12, -3, 3);
  const mask = randomFloats(h * w, 13, 0, 1).map((m, i) => i % 3 === 0 ? 0 : i % 3 === 1 ? 1 : m);
  const band = count * w;
  const outPlane = band + 6;
  const fbPlane = band + 3;
  const fallback = randomFloats(c * fbPlane, 14);
  const srcPlane = h * w + 5;
  const srcPadded = new Float32Array(2 + c * srcPlane).fill(NaN);
  for (let ch = 0; ch < c; ch++) {
    srcPadded.set(src.subarray(ch * h * w, (ch + 1) * h * w), 2 + ch * srcPlane);
  }
  const { out: warped, valid } = cpuWarp(src, flow, c, h, w);
  const want = new Float64Array(c * band);
  for (let ch = 0; ch < c; ch++) {
    for (let r = 0; r < count; r++) {
      for (let x = 0; x < w; x++) {
        const i = (y0 + r) * w + x;
        const m = valid[i] ? mask[i] : 0;
        const fb = fallback[ch * fbPlane + r * w + x];
        want[ch * band + r * w + x] = m * warped[ch * h * w + i] + (1 - m) * fb;
      }
    }
  }
  const out = scope.floats(c * outPlane, "out");
  const prog = new Program(gpu.device);
  await warp(ctx, scope, prog, {
    label: "warp.band",
    c,
    h,
    w,
    src: view(ctx.upload(scope, srcPadded, "src", false), 2, srcPlane),
    flow: view(ctx.upload(scope, flow, "flow", false)),
    out: view(out, 0, outPlane),
    rows: { y0, count },
    blend: {
      mask: view(ctx.upload(scope, mask, "mask", false)),
      fallback: view(ctx.upload(scope, fallback, "fallback", false), 0, fbPlane),
    },
  });
  runProgram(gpu.device, prog);
  const all = await readFloats(gpu.device, out, 0, c * outPlane);
  const got = new Float32Array(c * band);
  for (let ch = 0; ch < c; ch++) {
    got.set(all.subarray(ch * outPlane, ch * outPlane + band), ch * band);
  }
  const err = maxAbsDiff(got, want);
  assert.ok(err < 1e-5, `max |gpu − cpu| = ${err}`);
  scope.dispose();
});

Deno.test("warp: bicubic (Keys, a = −0.5) samples match a CPU bicubic warp within 1e-4, blended with the fallback; a half-pixel shift keeps more of a fine pattern than bilinear", async () => {
  const { ctx, scope, gpu } = await testContext();
  const [c, h, w] = [2, 21, 30];
  const src = randomFloats(c * h * w, 21, -100, 100);
  const flow = randomFloats(2 * h * w, 22, -4, 4);
  for (let i = 0; i < h * w; i += 5) [flow[i], flow[h * w + i]] = [Math.round(flow[i]), 0];
  const mask = randomFloats(h * w, 23, 0, 1).map((m, i) => i % 4 === 0 ? 0 : m);
  const fallback = randomFloats(c * h * w, 24, -100, 100);
  const { out: warped, valid } = cpuWarp(src, flow, c, h, w, true);
  const want = warped.map((v, k) => {
    const i = k % (h * w);
    const m = valid[i] ? mask[i] : 0;
    return m * v + (1 - m) * fallback[k];
  });
  const out = scope.floats(c * h * w, "out");
  const upload = (a: Float32Array<ArrayBuffer>, label: string) =>
    view(ctx.upload(scope, a, label, false));
  const prog = new Program(gpu.device);
  await warp(ctx, scope, prog, {
    label: "warp.cubic",
    c,
    h,
    w,
    src: upload(src, "src"),
    flow: upload(flow, "flow"),
    out: view(out),
    filter: "bicubic",
    blend: { mask: upload(mask, "mask"), fallback: upload(fallback, "fallback") },
  });
  runProgram(gpu.device, prog);
  const err = maxAbsDiff(await readFloats(gpu.device, out, 0, c * h * w), want);
  assert.ok(err < 1e-4, `max |gpu − cpu| = ${err} (values up to 100)`);

  // A stripe pattern of period 3 px shifted by half a pixel: bicubic keeps more of it.
  const stripes = new Float32Array(h * w).map((_, i) => 50 * Math.sin((2 * Math.PI * (i % w)) / 3));
  const half = new Float32Array(2 * h * w).fill(0).fill(0.5, 0, h * w);
  const amplitude = async (filter: "bilinear" | "bicubic") => {
    const o = scope.floats(h * w, `stripes.${filter}`);
    const p2 = new Program(gpu.device);
    await warp(ctx, scope, p2, {
      label: `stripes.${filter}`,
      c: 1,
      h,
      w,
      src: upload(stripes, "stripes"),
      flow: upload(half, "half"),
      out: view(o),
      filter,
    });
    runProgram(gpu.device, p2);
    const got = await readFloats(gpu.device, o, 0, h * w);
    return Math.max(...got.filter((_, i) => i % w > 2 && i % w < w - 3).map(Math.abs));
  };
  const [lin, cub] = [await amplitude("bilinear"), await amplitude("bicubic")];
  assert.ok(cub > 1.3 * lin, `stripe amplitude: bicubic ${cub}, bilinear ${lin}`);
  scope.dispose();
});
