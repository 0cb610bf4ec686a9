import assert from "node:assert/strict";
import { Program } from "../src/engine/gpu/scheduler.ts";
import { planeStride, view } from "../src/engine/ops/context.ts";
import {
  avgPool,
  avgPoolBackward,
  maxPool,
  maxPoolBackward,
  poolOut,
} from "../src/engine/ops/pool.ts";
import {
  padPlanes,
  randomFloats,
  readFloats,
  runProgram,
  testContext,
  unpadPlanes,
  uploadTextured,
} from "./helpers.ts";

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

/** CPU average pooling (doubles): each window's mean over its elements inside the input. */
function avgPoolRef(x: ArrayLike<number>, c: number, h: number, w: number): Float64Array {
  const [oh, ow] = [poolOut(h), poolOut(w)];
  const y = new Float64Array(c * oh * ow);
  for (let ch = 0; ch < c; ch++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        let sum = 0;
        let n = 0;
        for (let iy = 2 * oy; iy < Math.min(2 * oy + 3, h); iy++) {
          for (let ix = 2 * ox; ix < Math.min(2 * ox + 3, w); ix++) {
            sum += x[(ch * h + iy) * w + ix];
            n++;
          }
        }
        y[(ch * oh + oy) * ow + ox] = sum / n;
      }
    }
  }
  return y;
}

/** CPU average-pooling backward (doubles): each window's dy / count added to its elements. */
function avgPoolBackwardRef(dy: ArrayLike<number>, c: number, h: number, w: number): Float64Array {
  const [oh, ow] = [poolOut(h), poolOut(w)];
  const dx = new Float64Array(c * h * w);
  for (let ch = 0; ch < c; ch++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        const [y1, x1] = [Math.min(2 * oy + 3, h), Math.min(2 * ox + 3, w)];
        const g = dy[(ch * oh + oy) * ow + ox] / ((y1 - 2 * oy) * (x1 - 2 * ox));
        for (let iy = 2 * oy; iy < y1; iy++) {
          for (let ix = 2 * ox; ix < x1; ix++) dx[(ch * h + iy) * w + ix] += g;
        }
      }
    }
  }
  return dx;
}

function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * Runs avgPool and avgPoolBackward on the GPU: x and dy in padded planes
 * (NaN in the gaps, `at` floats into their buffers), x from a texture copy
 * with `tex`. Returns the pooled values and dx, dense.
 */
async function gpuAvgPool(
  c: number,
  h: number,
  w: number,
  x: Float32Array,
  dy: Float32Array,
  o: { padded: boolean; tex: boolean },
): Promise<{ y: Float32Array; dx: Float32Array }> {
  const { ctx, scope, gpu } = await testContext();
  const [oh, ow] = [poolOut(h), poolOut(w)];
  const [hp, op] = o.padded ? [planeStride(h, w) + 4, planeStride(oh, ow) + 4] : [h * w, oh * ow];
  const at = o.padded ? 6 : 0;
  const prog = new Program(gpu.device);
  const xData = padPlanes(x, c, h * w, hp, NaN, at);
  const { buffer: xb, tex: xTex } = uploadTextured(ctx, scope, prog, xData, "x", o.tex);
  const out = scope.floats(at + c * op, "y");
  const gx = scope.floats(at + c * hp, "dx");
  const shape = { c, h, w };
  await avgPool(ctx, scope, prog, {
    label: "avgpool",
    shape,
    x: view(xb, at, hp),
    out: view(out, at, op),
    xTex,
  });
  await avgPoolBackward(ctx, scope, prog, {
    label: "avgpool.back",
    shape,
    dy: view(ctx.upload(scope, padPlanes(dy, c, oh * ow, op, NaN, at), "dy"), at, op),
    dx: view(gx, at, hp),
  });
  runProgram(gpu.device, prog);
  const y = unpadPlanes(await readFloats(gpu.device, out, at, c * op), c, oh * ow, op);
  const dx = unpadPlanes(await readFloats(gpu.device, gx, at, c * hp), c, h * w, hp);
  assert.deepEqual(gpu.errors, []);
  scope.dispose();
  return { y, dx };
}

// Odd and even sides, windows clipped at the right and bottom edges, rows of
// several Q-segments (37, 40), the smallest inputs with a window (3, 4).
const avgCases: [number, number, { padded: boolean; tex: boolean }][] = [
  [3, 3, { padded: false, tex: false }],
  [4, 3, { padded: false, tex: false }],
  [7, 8, { padded: false, tex: false }],
  [6, 9, { padded: true, tex: false }],
  [11, 5, { padded: true, tex: false }],
  [9, 37, { padded: false, tex: false }],
  [13, 19, { padded: true, tex: true }],
  [16, 40, { padded: true, tex: true }],
  [25, 23, { padded: true, tex: false }],
];
for (const [h, w, o] of avgCases) {
  const how = (o.padded ? ", padded planes at an offset (NaN in the gaps)" : "") +
    (o.tex ? ", x fetched from a texture copy" : "");
  Deno.test(`avg pool ${h}×${w}: forward and backward match a CPU ceil-mode average (count inside the input)${how}`, async () => {
    const c = 3;
    const x = randomFloats(c * h * w, h * 37 + w);
    const dy = randomFloats(c * poolOut(h) * poolOut(w), h + 11 * w);
    const got = await gpuAvgPool(c, h, w, x, dy, o);
    const y = avgPoolRef(x, c, h, w);
    const dx = avgPoolBackwardRef(dy, c, h, w);
    assert.equal(got.y.length, y.length);
    got.y.forEach((v, i) => assert.ok(Math.abs(v - y[i]) < 1e-6, `y[${i}] ${v} vs ${y[i]}`));
    got.dx.forEach((v, i) => assert.ok(Math.abs(v - dx[i]) < 1e-6, `dx[${i}] ${v} vs ${dx[i]}`));
  });
}

Deno.test("avg pool backward is the adjoint of its forward: ⟨pool(x), y⟩ = ⟨x, poolᵀ(y)⟩ with and without edge-clipped windows", async () => {
  // Odd sides: every window is whole; even sides: the last one is clipped.
  for (const [h, w] of [[15, 13], [9, 37], [31, 29], [16, 40], [24, 18]]) {
    const c = 4;
    const x = randomFloats(c * h * w, 5 * h + w);
    const dy = randomFloats(c * poolOut(h) * poolOut(w), h * w);
    const got = await gpuAvgPool(c, h, w, x, dy, { padded: true, tex: false });
    const lhs = dot(got.y, dy);
    const rhs = dot(x, got.dx);
    assert.ok(Math.abs(lhs - rhs) <= 1e-5 * Math.abs(lhs), `${h}×${w}: ${lhs} vs ${rhs}`);
  }
});
