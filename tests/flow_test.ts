import assert from "node:assert/strict";
import { Program } from "../src/engine/gpu/scheduler.ts";
import { MEAN_BGR } from "../src/engine/image/tensor.ts";
import { type OpContext, type Scope, view } from "../src/engine/ops/context.ts";
import { FlowKernels } from "../src/engine/ops/flow.ts";
import { FrameFlow, pyramidSizes } from "../src/engine/video/flow.ts";
import { randomFloats, readFloats, runProgram, testContext } from "./helpers.ts";

// A smooth texture with a natural (1/f-like) spectrum: waves of 7 to 40 px,
// the shorter the weaker, one phase per channel. Frames sample it exactly
// wherever the motion says, so the true flow is known to the bit.
const WAVES = [
  [-0.0009, 0.025, 5.97, 40],
  [0.0333, 0.0162, 5.96, 28],
  [0.0293, 0.0437, 2.66, 18],
  [-0.0659, 0.0396, 2.57, 12],
  [-0.0172, 0.1098, 0.17, 7],
  [-0.1021, 0.0999, 3.38, 5],
];

function texture(x: number, y: number, ch: number): number {
  let s = 128;
  for (const [fx, fy, ph, a] of WAVES) s += a * Math.sin(2 * Math.PI * (fx * x + fy * y) + ph + ch);
  return s;
}

/** A preprocessed [3][h][w] frame whose pixel (x, y) shows `colour(x, y, ch)` (0..255). */
function frame(
  h: number,
  w: number,
  colour: (x: number, y: number, ch: number) => number,
): Float32Array<ArrayBuffer> {
  const out = new Float32Array(3 * h * w);
  for (let ch = 0; ch < 3; ch++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) out[(ch * h + y) * w + x] = colour(x, y, ch) - MEAN_BGR[ch];
    }
  }
  return out;
}

/** Mean |flow − truth| over the pixels `margin` or more from the border. */
function epe(
  flow: Float32Array,
  h: number,
  w: number,
  truth: (x: number, y: number) => [number, number],
  margin = 6,
): number {
  let sum = 0;
  let n = 0;
  for (let y = margin; y < h - margin; y++) {
    for (let x = margin; x < w - margin; x++) {
      const [u, v] = truth(x, y);
      sum += Math.hypot(flow[y * w + x] - u, flow[h * w + y * w + x] - v);
      n++;
    }
  }
  return sum / n;
}

async function flows(
  ctx: OpContext,
  scope: Scope,
  device: GPUDevice,
  h: number,
  w: number,
  prev: Float32Array<ArrayBuffer>,
  next: Float32Array<ArrayBuffer>,
) {
  const ff = await FrameFlow.create(ctx, scope, { h, w });
  ff.write(device.queue, prev, next);
  ff.run(device);
  return {
    ff,
    forward: await readFloats(device, ff.forward, 0, 2 * h * w),
    backward: await readFloats(device, ff.backward, 0, 2 * h * w),
    weights: await readFloats(device, ff.weights, 0, h * w),
  };
}

Deno.test("pyramidSizes halves each level (rounding up) while the shorter side stays at least minSide", () => {
  assert.deepEqual(pyramidSizes(48, 64, 6, 8), [[48, 64], [24, 32], [12, 16]]);
  assert.deepEqual(pyramidSizes(384, 512, 6, 8), [
    [384, 512],
    [192, 256],
    [96, 128],
    [48, 64],
    [24, 32],
    [12, 16],
  ]);
  assert.deepEqual(pyramidSizes(25, 31, 6, 4), [[25, 31], [13, 16], [7, 8], [4, 4]]);
  assert.deepEqual(pyramidSizes(25, 31, 3, 4), [[25, 31], [13, 16], [7, 8]]);
  assert.deepEqual(pyramidSizes(5, 5, 6, 8), [[5, 5]]);
});

Deno.test("flow of a sub-pixel shift (1.7, −0.6) px: forward and backward within 0.05 px mean end-point error, c = 1 inside", async () => {
  const { ctx, scope, gpu } = await testContext();
  const [h, w] = [48, 64];
  const [dx, dy] = [1.7, -0.6];
  const prev = frame(h, w, texture);
  const next = frame(h, w, (x, y, ch) => texture(x - dx, y - dy, ch));
  const r = await flows(ctx, scope, gpu.device, h, w, prev, next);
  const ef = epe(r.forward, h, w, () => [dx, dy]);
  const eb = epe(r.backward, h, w, () => [-dx, -dy]);
  // A zero flow would be 1.80 px off.
  assert.ok(ef < 0.05, `forward EPE ${ef}`);
  assert.ok(eb < 0.05, `backward EPE ${eb}`);
  let trusted = 0;
  let n = 0;
  for (let y = 4; y < h - 4; y++) {
    for (let x = 4; x < w - 4; x++, n++) trusted += r.weights[y * w + x];
  }
  assert.ok(trusted / n > 0.97, `c = 1 on ${trusted / n} of the inner pixels`);
  scope.dispose();
});

Deno.test("flow of a rotation by 3° with a zoom of 1.04× about the centre: within 0.1 px mean end-point error", async () => {
  const { ctx, scope, gpu } = await testContext();
  const [h, w] = [60, 80];
  const [cx, cy] = [(w - 1) / 2, (h - 1) / 2];
  const a = 3 * Math.PI / 180;
  const [c, s, z] = [Math.cos(a), Math.sin(a), 1.04];
  // A point at p in frame t−1 is at T(p) = centre + z·R·(p − centre) in frame t.
  const t = (x: number, y: number): [number, number] => [
    cx + z * (c * (x - cx) - s * (y - cy)),
    cy + z * (s * (x - cx) + c * (y - cy)),
  ];
  const inv = (x: number, y: number): [number, number] => [
    cx + (c * (x - cx) + s * (y - cy)) / z,
    cy + (-s * (x - cx) + c * (y - cy)) / z,
  ];
  const prev = frame(h, w, texture);
  const next = frame(h, w, (x, y, ch) => texture(...inv(x, y), ch));
  const r = await flows(ctx, scope, gpu.device, h, w, prev, next);
  const truth = (f: (x: number, y: number) => [number, number]) => (x: number, y: number) => {
    const [tx, ty] = f(x, y);
    return [tx - x, ty - y] as [number, number];
  };
  // Flows reach 3.7 px at the corners; the margin keeps targets inside.
  const ef = epe(r.forward, h, w, truth(t), 8);
  const eb = epe(r.backward, h, w, truth(inv), 8);
  assert.ok(ef < 0.1, `forward EPE ${ef}`);
  assert.ok(eb < 0.1, `backward EPE ${eb}`);
  scope.dispose();
});

Deno.test("consistency weights of a patch moving (4.3, 2.6) px over a still background: c = 0 on its disoccluded band, 1 on the background 4 px away and inside it", async () => {
  const { ctx, scope, gpu } = await testContext();
  const [h, w] = [64, 80];
  const [px, py, ps] = [24, 18, 24];
  const [dx, dy] = [4.3, 2.6];
  // Exact pixel coverage of the square [ox, ox + ps) × [oy, oy + ps).
  const cover = (x: number, y: number, ox: number, oy: number) =>
    Math.min(Math.max(Math.min(x + 0.5, ox + ps) - Math.max(x - 0.5, ox), 0), 1) *
    Math.min(Math.max(Math.min(y + 0.5, oy + ps) - Math.max(y - 0.5, oy), 0), 1);
  // The patch carries another part of the texture.
  const patch = (x: number, y: number, ch: number) => texture(x + 130, y - 70, ch + 1);
  const scene = (ox: number, oy: number) => (x: number, y: number, ch: number) => {
    const a = cover(x, y, ox, oy);
    return a * patch(x - (ox - px), y - (oy - py), ch) + (1 - a) * texture(x, y, ch);
  };
  const far = (x: number, y: number, ox: number, oy: number) =>
    x < ox - 4 || x > ox + ps + 3 || y < oy - 4 || y > oy + ps + 3;
  const prev = frame(h, w, scene(px, py));
  const next = frame(h, w, scene(px + dx, py + dy));
  const r = await flows(ctx, scope, gpu.device, h, w, prev, next);
  let [band, bandZero, rest, restOne] = [0, 0, 0, 0];
  for (let y = 4; y < h - 4; y++) {
    for (let x = 4; x < w - 4; x++) {
      const c = r.weights[y * w + x];
      // Background in frame t that the patch hid in frame t−1.
      if (cover(x, y, px, py) > 0.5 && cover(x, y, px + dx, py + dy) === 0) {
        band++;
        if (c === 0) bandZero++;
      } else if (
        // The still background 4 px or more from the patch at t−1 and at t,
        // or the moved patch 4 px or more inside its edges.
        (far(x, y, px, py) && far(x, y, px + dx, py + dy)) ||
        (x > px + dx + 4 && x < px + dx + ps - 5 && y > py + dy + 4 && y < py + dy + ps - 5)
      ) {
        rest++;
        if (c === 1) restOne++;
      }
    }
  }
  assert.ok(band > 80, `${band} disoccluded pixels`);
  assert.ok(bandZero / band > 0.9, `c = 0 on ${bandZero} of ${band} disoccluded pixels`);
  assert.ok(restOne / rest > 0.95, `c = 1 on ${restOne} of ${rest} pixels away from the motion`);
  // The flow away from the motion's edges: the patch's inside moved by
  // (dx, dy) (a zero flow would be 5.0 px off there), the background stayed.
  let [inside, still, nIn, nStill] = [0, 0, 0, 0];
  for (let y = 4; y < h - 4; y++) {
    for (let x = 4; x < w - 4; x++) {
      const [u, v] = [r.forward[y * w + x], r.forward[h * w + y * w + x]];
      if (x > px + 4 && x < px + ps - 5 && y > py + 4 && y < py + ps - 5) {
        inside += Math.hypot(u - dx, v - dy);
        nIn++;
      } else if (far(x, y, px, py) && far(x, y, px + dx, py + dy)) {
        still += Math.hypot(u, v);
        nStill++;
      }
    }
  }
  assert.ok(inside / nIn < 0.15, `EPE inside the patch ${inside / nIn}`);
  assert.ok(still / nStill < 0.1, `EPE on the still background ${still / nStill}`);
  scope.dispose();
});

/** flow.wgsl's check in float64 on the same inputs: the bit set of failed tests, and how close to a threshold it came. */
function cpuCheck(
  o: { prev: Float32Array; next: Float32Array; fw: Float32Array; bw: Float32Array },
  h: number,
  w: number,
  tau: number,
): { code: Uint8Array; close: Uint8Array } {
  const hw = h * w;
  const code = new Uint8Array(hw);
  const close = new Uint8Array(hw);
  const bil = (a: Float32Array, at: number, sx: number, sy: number) => {
    const cx = Math.min(Math.max(sx, 0), w - 1);
    const cy = Math.min(Math.max(sy, 0), h - 1);
    const [x0, y0] = [Math.floor(cx), Math.floor(cy)];
    const [x1, y1] = [Math.min(x0 + 1, w - 1), Math.min(y0 + 1, h - 1)];
    const [fx, fy] = [cx - x0, cy - y0];
    const v = (yy: number, xx: number) => a[at + yy * w + xx];
    return (v(y0, x0) * (1 - fx) + v(y0, x1) * fx) * (1 - fy) +
      (v(y1, x0) * (1 - fx) + v(y1, x1) * fx) * fy;
  };
  const near = (a: number, b: number) => Math.abs(a - b) <= 1e-4 * (Math.abs(b) + 1);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      const [bu, bv] = [o.bw[i], o.bw[hw + i]];
      const sx = Math.fround(x + bu);
      const sy = Math.fround(y + bv);
      let k = 0;
      if (!(sx >= -0.5 && sx <= w - 0.5 && sy >= -0.5 && sy <= h - 0.5)) k |= 1;
      const [fu, fv] = [bil(o.fw, 0, sx, sy), bil(o.fw, hw, sx, sy)];
      const lhs = (fu + bu) ** 2 + (fv + bv) ** 2;
      const rhs = 0.01 * (fu * fu + fv * fv + bu * bu + bv * bv) + 0.5;
      if (lhs > rhs) k |= 2;
      let c = near(lhs, rhs);
      const [l, r] = [x > 0 ? i - 1 : i, x + 1 < w ? i + 1 : i];
      const [t, b] = [y > 0 ? i - w : i, y + 1 < h ? i + w : i];
      const g = 0.25 * ((o.bw[r] - o.bw[l]) ** 2 + (o.bw[hw + r] - o.bw[hw + l]) ** 2 +
        (o.bw[b] - o.bw[t]) ** 2 + (o.bw[hw + b] - o.bw[hw + t]) ** 2);
      const mb = 0.01 * (bu * bu + bv * bv) + 0.002;
      if (g > mb) k |= 4;
      c ||= near(g, mb);
      let diff = 0;
      for (let ch = 0; ch < 3; ch++) {
        diff = Math.max(diff, Math.abs(bil(o.prev, ch * hw, sx, sy) - o.next[ch * hw + i]));
      }
      if (diff > tau) k |= 8;
      c ||= near(diff, tau);
      code[i] = k;
      close[i] = c ? 1 : 0;
    }
  }
  return { code, close };
}

Deno.test("consistency check: each test (outside, forward–backward, motion boundary, photometric) matches a float64 CPU check", async () => {
  const { ctx, scope, gpu } = await testContext();
  const [h, w] = [40, 56];
  const hw = h * w;
  // A smooth backward flow with a step (a motion boundary) and a region
  // pushed out of the frame; a forward flow that undoes it on the left
  // half and not on the right; frames that agree under it except in a block.
  const bw = new Float32Array(2 * hw);
  const fw = new Float32Array(2 * hw);
  const noise = randomFloats(2 * hw, 21, -3, 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = y * w + x;
      bw[i] = 1.5 * Math.sin(x / 9) + (y > 25 ? 2.5 : 0) + (x < 6 && y < 10 ? -9 : 0);
      bw[hw + i] = Math.cos(y / 7 + x / 13);
      const bad = x > w / 2;
      fw[i] = -bw[i] + (bad ? noise[i] : 0.05 * noise[i]);
      fw[hw + i] = -bw[hw + i] + (bad ? noise[hw + i] : 0.05 * noise[hw + i]);
    }
  }
  const prev = frame(h, w, texture);
  const next = frame(h, w, (x, y, ch) => {
    const i = y * w + x;
    const jolt = x > 10 && x < 20 && y > 5 && y < 15 ? 30 * Math.sin(x + ch) : 0;
    return texture(x + bw[i], y + bw[hw + i], ch) + jolt;
  });
  const tau = 20;
  const codes = scope.floats(hw, "codes");
  const weights = scope.floats(hw, "weights");
  const k = new FlowKernels(ctx, scope);
  const prog = new Program(gpu.device);
  const o = {
    prev: view(ctx.upload(scope, prev, "prev", false)),
    next: view(ctx.upload(scope, next, "next", false)),
    forward: ctx.upload(scope, fw, "fw", false),
    backward: ctx.upload(scope, bw, "bw", false),
    h,
    w,
    tau,
  };
  await k.check(prog, "codes", { ...o, out: codes, codes: true });
  await k.check(prog, "weights", { ...o, out: weights });
  runProgram(gpu.device, prog);
  const got = await readFloats(gpu.device, codes, 0, hw);
  const c = await readFloats(gpu.device, weights, 0, hw);
  const want = cpuCheck({ prev, next, fw, bw }, h, w, tau);
  const seen = [0, 0, 0, 0];
  let compared = 0;
  for (let i = 0; i < hw; i++) {
    assert.equal(c[i], got[i] === 0 ? 1 : 0, `pixel ${i}: c ${c[i]} with code ${got[i]}`);
    if (want.close[i]) continue;
    compared++;
    assert.equal(got[i], want.code[i], `pixel ${i % w}, ${Math.floor(i / w)}`);
    for (let b = 0; b < 4; b++) if (want.code[i] & (1 << b)) seen[b]++;
  }
  assert.ok(compared > 0.98 * hw, `${hw - compared} pixels too close to a threshold to compare`);
  for (const [b, n] of seen.entries()) assert.ok(n >= 20, `test ${1 << b} failed on ${n} pixels`);
  assert.ok(c.filter((v) => v === 1).length > 0.2 * hw, "too few pixels kept");
  scope.dispose();
});

Deno.test("FrameFlow.warp brings frame t−1 onto frame t by the backward flow, and with a fallback takes it where c = 0", async () => {
  const { ctx, scope, gpu } = await testContext();
  const [h, w] = [48, 64];
  const [dx, dy] = [2.4, 1.1];
  const prev = frame(h, w, texture);
  const next = frame(h, w, (x, y, ch) => texture(x - dx, y - dy, ch));
  const ff = await FrameFlow.create(ctx, scope, { h, w });
  ff.write(gpu.device.queue, prev, next);
  const fallback = randomFloats(3 * h * w, 31, -500, -400);
  const omega = scope.floats(3 * h * w, "omega");
  const init = scope.floats(3 * h * w, "init");
  const src = view(ctx.upload(scope, prev, "prev.copy", false));
  await ff.warp(ff.program, { src, out: view(omega) });
  await ff.warp(ff.program, {
    src,
    out: view(init),
    fallback: view(ctx.upload(scope, fallback, "fallback", false)),
  });
  ff.run(gpu.device);
  const got = await readFloats(gpu.device, omega, 0, 3 * h * w);
  const first = await readFloats(gpu.device, init, 0, 3 * h * w);
  const c = await readFloats(gpu.device, ff.weights, 0, h * w);
  let err = 0;
  let n = 0;
  let [kept, replaced] = [0, 0];
  for (let ch = 0; ch < 3; ch++) {
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const i = y * w + x;
        const e = ch * h * w + i;
        if (c[i] === 1) {
          assert.equal(first[e], got[e]);
          kept++;
        } else {
          assert.equal(first[e], fallback[e]);
          replaced++;
        }
        if (x >= 6 && x < w - 6 && y >= 6 && y < h - 6) {
          err += Math.abs(got[e] - next[e]);
          n++;
        }
      }
    }
  }
  // The texture's values span about ±120; warping by the true flow is off by
  // the bilinear interpolation's error (about 0.2 here).
  assert.ok(err / n < 1, `mean |ω − frame t| = ${err / n}`);
  // The frame's first columns and rows come from outside frame t−1.
  assert.ok(
    replaced >= 3 * (2 * h + w) && kept > 0.8 * 3 * h * w,
    `${kept} kept, ${replaced} replaced`,
  );
  scope.dispose();
});
