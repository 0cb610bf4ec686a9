import assert from "node:assert/strict";
import { Program } from "../src/engine/gpu/scheduler.ts";
import {
  conv2d,
  conv2dBackwardStrided,
  convOut,
  type ConvShape,
  packStridedKernel,
  pointwiseInvocations,
  stridedBackwardInvocations,
} from "../src/engine/ops/conv.ts";
import { type FeatureTexture, planeStride, view } from "../src/engine/ops/context.ts";
import {
  padPlanes,
  randomFloats,
  readFloats,
  relL2,
  runProgram,
  testContext,
  unpadPlanes,
  uploadTextured,
} from "./helpers.ts";

/** CPU reference: y = conv(x, w [KH][KW][Cin][Cout]) + b, optional ReLU. */
function convRef(s: ConvShape, x: Float32Array, w: Float32Array, b: Float32Array | null) {
  const oh = convOut(s.h, s.kh, s.stride, s.pad);
  const ow = convOut(s.w, s.kw, s.stride, s.pad);
  const y = new Float64Array(s.cout * oh * ow);
  for (let co = 0; co < s.cout; co++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        let acc = b ? b[co] : 0;
        for (let kh = 0; kh < s.kh; kh++) {
          for (let kw = 0; kw < s.kw; kw++) {
            const iy = oy * s.stride + kh - s.pad;
            const ix = ox * s.stride + kw - s.pad;
            if (iy < 0 || ix < 0 || iy >= s.h || ix >= s.w) continue;
            for (let ci = 0; ci < s.cin; ci++) {
              acc += w[((kh * s.kw + kw) * s.cin + ci) * s.cout + co] *
                x[(ci * s.h + iy) * s.w + ix];
            }
          }
        }
        y[(co * oh + oy) * ow + ox] = acc;
      }
    }
  }
  return { y, oh, ow };
}

const pad1 = (cin: number, cout: number, h: number, w: number): ConvShape => ({
  cin,
  cout,
  h,
  w,
  kh: 3,
  kw: 3,
  stride: 1,
  pad: 1,
});
const p1 = (cin: number, cout: number, h: number, w: number): ConvShape => ({
  cin,
  cout,
  h,
  w,
  kh: 1,
  kw: 1,
  stride: 1,
  pad: 0,
});
const s2 = (cin: number, cout: number, h: number, w: number): ConvShape => ({
  ...pad1(cin, cout, h, w),
  stride: 2,
  pad: 0,
});

// "padded": the network's layout (planes rounded up to 4, aligned offsets),
// which 1×1 convolutions need and which gives 3×3 ones flattened pixel
// segments (rows wrapping inside an invocation's 16 pixels) and vec4 stores.
const SHAPES: [string, ConvShape, ("gradient" | undefined)?, "padded"?][] = [
  ["1x1", { cin: 13, cout: 24, h: 7, w: 9, kh: 1, kw: 1, stride: 1, pad: 0 }, undefined, "padded"],
  [
    "1x1 over more pixels than one workgroup tile",
    {
      cin: 5,
      cout: 16,
      h: 29,
      w: 31,
      kh: 1,
      kw: 1,
      stride: 1,
      pad: 0,
    },
    undefined,
    "padded",
  ],
  // Weights [cin][cout] as 2 or 4 uniform arrays of 64 KB (whole rows each),
  // or in storage: over 256 KB, or rows that do not tile an array.
  ["1x1, weights over 2 uniform arrays", p1(160, 128, 5, 6), undefined, "padded"],
  ["1x1, weights over 4 uniform arrays", p1(250, 256, 3, 5), undefined, "padded"],
  ["1x1, weights past 4 uniform arrays", p1(300, 256, 3, 5), undefined, "padded"],
  ["1x1, weights rows that do not tile a uniform array", p1(200, 96, 3, 5), undefined, "padded"],
  ["3x3, kernel rows past a uniform array", pad1(40, 160, 4, 6), undefined, "padded"],
  ["3x3 pad 1", pad1(5, 16, 9, 13)],
  ["3x3 pad 1 on padded planes", pad1(5, 16, 9, 13), undefined, "padded"],
  ["3x3 pad 1 on padded planes, 5-pixel rows", pad1(6, 16, 7, 5), undefined, "padded"],
  ["3x3 pad 1 on padded planes, 37-pixel rows", pad1(4, 32, 4, 37), undefined, "padded"],
  ["3x3 pad 1 with the gradient tile", pad1(5, 16, 9, 37), "gradient"],
  ["3x3 stride 2 (conv1)", { cin: 3, cout: 16, h: 12, w: 23, kh: 3, kw: 3, stride: 2, pad: 0 }],
  ["3x3 stride 2 on padded planes, 11-pixel rows", s2(3, 16, 12, 23), undefined, "padded"],
  ["3x3 stride 2 on padded planes, 20-pixel rows", s2(3, 32, 19, 41), undefined, "padded"],
];

for (const [name, s, use, layout] of SHAPES) {
  Deno.test(`conv2d ${name} with bias and ReLU matches a CPU convolution`, async () => {
    const { ctx, scope, gpu } = await testContext();
    const x = randomFloats(s.cin * s.h * s.w, 1);
    const w = randomFloats(s.kh * s.kw * s.cin * s.cout, 2);
    const b = randomFloats(s.cout, 3);
    const ref = convRef(s, x, w, b);
    const np = ref.oh * ref.ow;
    // Padded planes with NaN in the padding and aligned offsets, or (3×3
    // only) dense planes with the output at an odd offset.
    const [xp, op, at] = layout ? [planeStride(s.h, s.w), planeStride(ref.oh, ref.ow), 8] : [
      s.h * s.w,
      np,
      5,
    ];
    const out = scope.floats(at + s.cout * op, "out");
    const prog = new Program(gpu.device);
    await conv2d(ctx, scope, prog, {
      label: "t",
      shape: s,
      x: view(ctx.upload(scope, padPlanes(x, s.cin, s.h * s.w, xp, NaN), "x"), 0, xp),
      weights: ctx.upload(scope, w, "w"),
      bias: ctx.upload(scope, b, "b"),
      out: view(out, at, op),
      relu: true,
      use,
    });
    runProgram(gpu.device, prog);
    const all = await readFloats(gpu.device, out, at, s.cout * op);
    const got = unpadPlanes(all, s.cout, np, op);
    const want = ref.y.map((v) => Math.max(v, 0));
    assert.ok(relL2(got, want) < 1e-6, `rel err ${relL2(got, want)}`);
    scope.dispose();
  });
}

Deno.test("conv2d rejects a 1×1 convolution on unaligned planes", async () => {
  const { ctx, scope, gpu } = await testContext();
  const s: ConvShape = { cin: 4, cout: 16, h: 3, w: 3, kh: 1, kw: 1, stride: 1, pad: 0 };
  const o = { label: "t", shape: s, weights: scope.floats(64, "w") };
  const prog = new Program(gpu.device);
  const buf = scope.floats(256, "b");
  await assert.rejects(
    conv2d(ctx, scope, prog, { ...o, x: view(buf), out: view(buf) }),
    /multiples of 4/,
  );
  await assert.rejects(
    conv2d(ctx, scope, prog, { ...o, x: view(buf, 0, 12), out: view(buf, 2, 12) }),
    /multiples of 4/,
  );
  scope.dispose();
});

// Dense planes take the row-segment kernel, padded ones the flattened one.
for (const layout of ["dense", "padded"]) {
  Deno.test(`conv2d accumulate and output mask on ${layout} planes: out = (out + x conv w)·[mo>0]`, async () => {
    const { ctx, scope, gpu } = await testContext();
    const s: ConvShape = { cin: 6, cout: 8, h: 5, w: 11, kh: 3, kw: 3, stride: 1, pad: 1 };
    const np = s.h * s.w;
    const n = s.cout * np;
    const x = randomFloats(s.cin * np, 4);
    const w = randomFloats(9 * s.cin * s.cout, 6);
    const mo = randomFloats(n, 7);
    const init = randomFloats(n, 8);
    const ref = convRef(s, x, w, null);
    const want = ref.y.map((v, i) => mo[i] > 0 ? v + init[i] : 0);
    // Padded: the buffers start at different aligned offsets.
    const p = layout === "padded" ? planeStride(s.h, s.w) : np;
    const planes = (a: Float32Array<ArrayBuffer>, c: number, label: string, at: number) =>
      view(ctx.upload(scope, padPlanes(a, c, np, p, NaN, at), label), at, p);
    const [x0, o0, m0] = layout === "padded" ? [12, 4, 8] : [0, 0, 0];
    const out = planes(init, s.cout, "out", o0);
    const prog = new Program(gpu.device);
    await conv2d(ctx, scope, prog, {
      label: "t",
      shape: s,
      x: planes(x, s.cin, "x", x0),
      weights: ctx.upload(scope, w, "w"),
      out,
      accumulate: true,
      maskOut: planes(mo, s.cout, "mo", m0),
    });
    runProgram(gpu.device, prog);
    const all = await readFloats(gpu.device, out.buffer, o0, s.cout * p);
    const got = unpadPlanes(all, s.cout, np, p);
    assert.ok(relL2(got, want) < 1e-6, `rel err ${relL2(got, want)}`);
    scope.dispose();
  });
}

// "from textures": F (and its mask) and P fetched from textures holding
// their buffers' vec4s (NaN padding included).
for (const tex of [false, true]) {
  Deno.test(`conv2d 1×1 with a fused content term${tex ? " from textures" : ""}: out = (x conv w + 2c·(F−P))·[F>0], partials sum c·Σ(F−P)²`, async () => {
    const { ctx, scope, gpu } = await testContext();
    const s: ConvShape = { cin: 6, cout: 8, h: 5, w: 11, kh: 1, kw: 1, stride: 1, pad: 0 };
    const np = s.h * s.w;
    const n = s.cout * np;
    const p = planeStride(s.h, s.w); // 56: one padding pixel per plane, NaN
    const x = randomFloats(s.cin * np, 11);
    const w = randomFloats(s.cin * s.cout, 12);
    const f = randomFloats(n, 13);
    const target = randomFloats(n, 14);
    const c = 0.37;
    const ref = convRef(s, x, w, null);
    const want = ref.y.map((v, i) => f[i] > 0 ? v + 2 * c * (f[i] - target[i]) : 0);
    let loss = 0;
    for (let i = 0; i < n; i++) loss += c * (f[i] - target[i]) ** 2;
    const planes = (a: Float32Array<ArrayBuffer>, ch: number, label: string, at = 0) =>
      view(ctx.upload(scope, padPlanes(a, ch, np, p, NaN, at), label), at, p);
    // A texture holding what `planes` uploads.
    const texture = (a: Float32Array<ArrayBuffer>, ch: number, label: string, at = 0) => {
      if (!tex) return undefined;
      const data = padPlanes(a, ch, np, p, NaN, at);
      const t = scope.featureTexture(gpu.device, data.length, label)!;
      const full = new Float32Array(t.floats);
      full.set(data);
      gpu.device.queue.writeTexture({ texture: t.texture }, full, { bytesPerRow: t.width * 16 }, [
        t.width,
        t.height,
      ]);
      return t;
    };
    const out = planes(new Float32Array(n), s.cout, "out");
    const nparts = pointwiseInvocations(ctx, s.cout, p);
    // The partials after 4 floats that must stay untouched.
    const parts = ctx.upload(scope, new Float32Array(4 + nparts + 4).fill(-1), "parts");
    const prog = new Program(gpu.device);
    await conv2d(ctx, scope, prog, {
      label: "t",
      shape: s,
      x: planes(x, s.cin, "x", 8),
      weights: ctx.upload(scope, w, "w"),
      out,
      maskOut: planes(f, s.cout, "f", 4),
      maskTex: texture(f, s.cout, "f.tex", 4),
      content: {
        target: planes(target, s.cout, "p").buffer,
        targetTex: texture(target, s.cout, "p.tex"),
        weight: c,
        npix: np,
        parts: view(parts, 4),
      },
    });
    runProgram(gpu.device, prog);
    const all = await readFloats(gpu.device, out.buffer, 0, s.cout * p);
    const got = unpadPlanes(all, s.cout, np, p);
    assert.ok(relL2(got, want) < 1e-6, `rel err ${relL2(got, want)}`);
    const ps = await readFloats(gpu.device, parts, 0, 4 + nparts + 4);
    assert.deepEqual([...ps.subarray(0, 4), ...ps.subarray(4 + nparts)], new Array(8).fill(-1));
    const sum = ps.subarray(4, 4 + nparts).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - loss) <= 1e-5 * loss, `loss ${sum} vs ${loss}`);
    scope.dispose();
  });
}

// "from textures": both inputs and the mask fetched from texture copies of
// their buffers (at most 32 texels on a side: the mask's 32 wide, the
// inputs' 16).
for (const tex of [false, true]) {
  Deno.test(`conv2d 1×1 plus a second 1×1 input (squeeze gradient + Gram backward)${tex ? " from textures" : ""}: out = (x conv w + x2 conv w2)·[mo>0]`, async () => {
    const { ctx, scope, gpu } = await testContext();
    const s: ConvShape = { cin: 5, cout: 8, h: 9, w: 31, kh: 1, kw: 1, stride: 1, pad: 0 };
    const np = s.h * s.w;
    const p = planeStride(s.h, s.w); // 280: one padding pixel per plane, NaN
    const cin2 = 6;
    const x = randomFloats(s.cin * np, 21);
    const w = randomFloats(s.cin * s.cout, 22);
    const x2 = randomFloats(cin2 * np, 23);
    const w2 = randomFloats(cin2 * s.cout, 24);
    const mo = randomFloats(s.cout * np, 25);
    const a = convRef(s, x, w, null).y;
    const b = convRef({ ...s, cin: cin2 }, x2, w2, null).y;
    const want = a.map((v, i) => mo[i] > 0 ? v + b[i] : 0);
    const prog = new Program(gpu.device);
    const textures: FeatureTexture[] = [];
    // Planes at element `at` of their own buffer, and with `tex` a texture
    // copy of the buffer (which then covers whole texture rows).
    const planes = (d: Float32Array<ArrayBuffer>, ch: number, label: string, at = 0) => {
      const data = padPlanes(d, ch, np, p, NaN, at);
      const { buffer, tex: t } = uploadTextured(ctx, scope, prog, data, label, tex, 32);
      if (t) textures.push(t);
      return view(buffer, at, p);
    };
    const out = view(
      ctx.upload(scope, padPlanes(new Float32Array(s.cout * np), s.cout, np, p, NaN, 4), "out"),
      4,
      p,
    );
    const xv = planes(x, s.cin, "x");
    const x2v = planes(x2, cin2, "x2", 12);
    const mov = planes(mo, s.cout, "mo", 8);
    if (tex) assert.deepEqual(textures.map((t) => t.width), [16, 16, 32]);
    await conv2d(ctx, scope, prog, {
      label: "t",
      shape: s,
      x: xv,
      weights: ctx.upload(scope, w, "w"),
      out,
      maskOut: mov,
      plus1x1: { x: x2v, weights: ctx.upload(scope, w2, "w2"), cin: cin2, tex: textures[1] },
      use: "gram",
      xTex: textures[0],
      maskTex: textures[2],
    });
    runProgram(gpu.device, prog);
    const all = await readFloats(gpu.device, out.buffer, 4, s.cout * p);
    const got = unpadPlanes(all, s.cout, np, p);
    assert.ok(relL2(got, want) < 1e-6, `rel err ${relL2(got, want)}`);
    scope.dispose();
  });
}

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

// Widths that are not multiples of 4, odd heights (a last row of dx blocks
// half outside), 1–3 channels.
for (const [cin, h, w] of [[3, 13, 70], [3, 7, 9], [1, 6, 4], [2, 9, 35]]) {
  Deno.test(`conv2dBackwardStrided with a fused TV term ${cin}×${h}×${w}: dx = convᵀ(dy) + the TV gradient, partials sum the TV loss`, async () => {
    const { ctx, scope, gpu } = await testContext();
    const s: ConvShape = { cin, cout: 5, h, w, kh: 3, kw: 3, stride: 2, pad: 0 };
    const n = cin * h * w;
    const oh = convOut(h, 3, 2, 0);
    const ow = convOut(w, 3, 2, 0);
    const dy = view(ctx.upload(scope, randomFloats(s.cout * oh * ow, 31), "dy"));
    const packed = ctx.upload(
      scope,
      packStridedKernel(randomFloats(9 * cin * s.cout, 32), cin, s.cout),
      "wb",
    );
    const x = randomFloats(n, 33);
    const ref = tvRef(x, cin, h, w, 0.5);
    const plain = scope.floats(n, "dx");
    const fused = scope.floats(n, "dx.tv");
    const nparts = stridedBackwardInvocations(ctx, h, w);
    const parts = ctx.upload(scope, new Float32Array(2 + nparts + 2).fill(-1), "parts");
    const prog = new Program(gpu.device);
    await conv2dBackwardStrided(ctx, scope, prog, {
      label: "t",
      shape: s,
      dy,
      packed,
      dx: view(plain),
    });
    await conv2dBackwardStrided(ctx, scope, prog, {
      label: "t.tv",
      shape: s,
      dy,
      packed,
      dx: view(fused),
      tv: { x: ctx.upload(scope, x, "x"), weight: 0.5, parts: view(parts, 2) },
    });
    runProgram(gpu.device, prog);
    const base = await readFloats(gpu.device, plain, 0, n);
    const got = await readFloats(gpu.device, fused, 0, n);
    assert.ok(
      relL2(got, ref.grad.map((g, i) => g + base[i])) < 1e-6,
      `rel err ${relL2(got, ref.grad.map((g, i) => g + base[i]))}`,
    );
    const ps = await readFloats(gpu.device, parts, 0, 2 + nparts + 2);
    assert.deepEqual([...ps.subarray(0, 2), ...ps.subarray(2 + nparts)], [-1, -1, -1, -1]);
    const loss = ps.subarray(2, 2 + nparts).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(loss - ref.loss) <= 1e-5 * ref.loss, `loss ${loss} vs ${ref.loss}`);
    scope.dispose();
  });
}

// dy 4 floats into its buffer; at most 32 texels on a side for 31×70: 32
// texels wide instead of 16.
for (const [cin, h, w, maxDim] of [[3, 31, 70, 32], [2, 9, 35, 0]]) {
  Deno.test(`conv2dBackwardStrided ${cin}×${h}×${w} fetching dy from a texture copy equals it from the buffer`, async () => {
    const { ctx, scope, gpu } = await testContext();
    const s: ConvShape = { cin, cout: 5, h, w, kh: 3, kw: 3, stride: 2, pad: 0 };
    const n = cin * h * w;
    const dyN = s.cout * convOut(h, 3, 2, 0) * convOut(w, 3, 2, 0);
    const tex = scope.featureTexture(gpu.device, 4 + dyN, "dy.tex", maxDim || undefined)!;
    assert.equal(tex.width, maxDim ? 32 : 16);
    const dyb = ctx.upload(scope, randomFloats(tex.floats, 31), "dy");
    const packed = ctx.upload(
      scope,
      packStridedKernel(randomFloats(9 * cin * s.cout, 32), cin, s.cout),
      "wb",
    );
    const got = [];
    for (const dyTex of [undefined, tex]) {
      const dx = scope.floats(n, "dx");
      const prog = new Program(gpu.device);
      if (dyTex) prog.copyToTexture("dy.tex", dyb, dyTex.texture);
      await conv2dBackwardStrided(ctx, scope, prog, {
        label: "t",
        shape: s,
        dy: view(dyb, 4),
        packed,
        dx: view(dx),
        dyTex,
      });
      runProgram(gpu.device, prog);
      got.push(await readFloats(gpu.device, dx, 0, n));
    }
    assert.deepEqual(got[1], got[0]);
    assert.ok(got[0].some((v) => v !== 0));
    scope.dispose();
  });
}

Deno.test("conv2dBackwardStrided is the adjoint of the strided convolution", async () => {
  // <conv(x), dy> == <x, convᵀ(dy)> for any x: checks the gather indexing.
  const { ctx, scope, gpu } = await testContext();
  const s: ConvShape = { cin: 3, cout: 7, h: 13, w: 70, kh: 3, kw: 3, stride: 2, pad: 0 };
  const oh = convOut(s.h, 3, 2, 0);
  const ow = convOut(s.w, 3, 2, 0);
  const w = randomFloats(9 * s.cin * s.cout, 9);
  const dy = randomFloats(s.cout * oh * ow, 10);
  const dx = scope.floats(s.cin * s.h * s.w, "dx");
  const prog = new Program(gpu.device);
  await conv2dBackwardStrided(ctx, scope, prog, {
    label: "t",
    shape: s,
    dy: view(ctx.upload(scope, dy, "dy")),
    packed: ctx.upload(scope, packStridedKernel(w, s.cin, s.cout), "wb"),
    dx: view(dx),
  });
  runProgram(gpu.device, prog);
  const got = await readFloats(gpu.device, dx, 0, s.cin * s.h * s.w);
  // Column i of the adjoint = convolution of the unit vector e_i.
  const want = new Float64Array(got.length);
  const e = new Float32Array(got.length);
  for (let i = 0; i < e.length; i++) {
    e[i] = 1;
    const { y: col } = convRef(s, e, w, null);
    let acc = 0;
    for (let k = 0; k < col.length; k++) acc += col[k] * dy[k];
    want[i] = acc;
    e[i] = 0;
  }
  assert.ok(relL2(got, want) < 1e-6, `rel err ${relL2(got, want)}`);
  scope.dispose();
});

for (
  const [name, kh, pad, cin, cout, use] of [
    ["1x1 (aligned vec4 path)", 1, 0, 12, 16, "forward"],
    ["1x1 Gram-backward tile (aligned vec4 path)", 1, 0, 12, 16, "gram"],
    ["3x3 pad 1", 3, 1, 6, 8, "forward"],
  ] as const
) {
  Deno.test(`conv2d ${name} on padded planes: NaN padding stays out of the pixels`, async () => {
    const { ctx, scope, gpu } = await testContext();
    const s: ConvShape = { cin, cout, h: 5, w: 7, kh, kw: kh, stride: 1, pad };
    const np = s.h * s.w;
    const plane = 36; // planeStride(5, 7)
    const x = randomFloats(s.cin * np, 11);
    const w = randomFloats(kh * kh * s.cin * s.cout, 12);
    const mo = randomFloats(s.cout * np, 13);
    const init = randomFloats(s.cout * np, 14);
    const ref = convRef(s, x, w, null);
    const want = ref.y.map((v, i) => mo[i] > 0 ? v + init[i] : 0);
    // Outputs at an aligned offset of 8, planes 36 apart.
    const out = ctx.upload(scope, padPlanes(init, s.cout, np, plane, NaN, 8), "out");
    const prog = new Program(gpu.device);
    await conv2d(ctx, scope, prog, {
      label: "t",
      shape: s,
      x: view(ctx.upload(scope, padPlanes(x, s.cin, np, plane, NaN), "x"), 0, plane),
      weights: ctx.upload(scope, w, "w"),
      out: view(out, 8, plane),
      accumulate: true,
      maskOut: view(ctx.upload(scope, padPlanes(mo, s.cout, np, plane, NaN, 8), "mo"), 8, plane),
      use,
    });
    runProgram(gpu.device, prog);
    const all = await readFloats(gpu.device, out, 8, s.cout * plane);
    const got = unpadPlanes(all, s.cout, np, plane);
    assert.ok(relL2(got, want) < 1e-6, `rel err ${relL2(got, want)}`);
    scope.dispose();
  });
}

// Padded planes take the flattened kernel, dense ones (35 pixels) the row
// segments; "texture": x fetched from a texture copy of its buffer (at most
// 64 texels on a side for 9×37: 64 texels wide instead of 16).
for (
  const [h, w, c3, c1, cout, layout] of [
    [5, 7, 8, 12, 16, "padded"],
    [9, 37, 16, 16, 32, "padded"],
    [5, 7, 8, 12, 16, "dense"],
    [5, 7, 8, 12, 16, "texture"],
    [9, 37, 16, 16, 32, "texture"],
  ] as const
) {
  Deno.test(`conv2d 3x3 plus a 1×1 of a second input (fire expand gradients) on ${layout} ${h}×${w} planes`, async () => {
    const { ctx, scope, gpu } = await testContext();
    const np = h * w;
    const plane = layout === "dense" ? np : planeStride(h, w);
    const s: ConvShape = { cin: c3, cout, h, w, kh: 3, kw: 3, stride: 1, pad: 1 };
    const x3 = randomFloats(c3 * np, 21);
    const x1 = randomFloats(c1 * np, 22);
    const w3 = randomFloats(9 * c3 * cout, 23);
    const w1 = randomFloats(c1 * cout, 24);
    const mo = randomFloats(cout * np, 25);
    const y3 = convRef(s, x3, w3, null).y;
    const y1 = convRef({ ...s, cin: c1, kh: 1, kw: 1, pad: 0 }, x1, w1, null).y;
    const want = y3.map((v, i) => mo[i] > 0 ? v + y1[i] : 0);
    // One buffer: the 1×1's input first (c1 planes), then the 3×3's (c3 planes).
    const both = new Float32Array([...x1, ...x3]);
    const padded = padPlanes(both, c1 + c3, np, plane, NaN);
    const prog = new Program(gpu.device);
    const { buffer: x, tex } = uploadTextured(
      ctx,
      scope,
      prog,
      padded,
      "x",
      layout === "texture",
      h > 5 ? 64 : undefined,
    );
    if (tex) assert.equal(tex.width, h > 5 ? 64 : 16);
    const out = scope.floats(cout * plane, "out");
    await conv2d(ctx, scope, prog, {
      label: "t",
      shape: s,
      x: view(x, c1 * plane, plane),
      weights: ctx.upload(scope, w3, "w3"),
      plus1x1: { x: view(x, 0, plane), weights: ctx.upload(scope, w1, "w1"), cin: c1 },
      out: view(out, 0, plane),
      maskOut: view(ctx.upload(scope, padPlanes(mo, cout, np, plane, NaN), "mo"), 0, plane),
      use: "gradient",
      xTex: tex ?? undefined,
    });
    runProgram(gpu.device, prog);
    const all = await readFloats(gpu.device, out, 0, cout * plane);
    const got = unpadPlanes(all, cout, np, plane);
    assert.ok(relL2(got, want) < 1e-6, `rel err ${relL2(got, want)}`);
    scope.dispose();
  });
}
