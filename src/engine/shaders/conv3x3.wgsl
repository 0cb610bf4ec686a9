// 3×3 convolution (stride S, padding PAD): out[co][oy][ox] =
// Σ W[ky][kx][ci][co]·x[ci][oy·S+ky−PAD][ox·S+kx−PAD] (+ bias, ReLU). Serves
// conv1 (S 2, PAD 0), the expand3x3 layers (S 1, PAD 1) and their input
// gradients (flipped, transposed kernel).
// Each invocation owns TMV vec4 groups of output channels × a row segment of
// TN output pixels, and sums in PyTorch's order (ky, kx, then the input
// channels, U per loop step; cin % U == 0): activations near 0 then round as
// in the oracle, so ReLU masks and pooling argmaxes downstream agree with it.
// XV 1 (TN % 4 == 0) loads each row segment (TN·S values) as aligned vec4s
// realigned in registers instead of one scalar load per value; with stride 2
// every other value is used. E1 1 also sums a 1×1 convolution of a second
// input (see below). FL 1 (aligned output planes, TN % 4 == 0): the TN
// pixels of an invocation are consecutive in the flattened output plane (a
// row may wrap inside them), so the epilogue stores vec4s (on lavapipe 0.26
// ns per float against 1.6–1.9 for scalar stores); with XV (stride 1, PAD 1,
// an output as large as the input) every tap is masked at the borders per
// pixel, without XV (PAD 0, any stride: conv1) each pixel loads its own
// scalars. XT 1 (with XV) fetches the vec4s from a texture copy of x's
// buffer (a FeatureTexture, src/engine/ops/context.ts), which lavapipe does faster
// than it loads storage where the lanes' addresses scatter (bench/NOTES.md,
// rows 51–52). WU 1 reads the weights of kernel row ky through a uniform
// array of their own (bindings 2, 11, 12: the ops bind each row's part of
// the buffer), WU1 the second input's weights (binding 7): lavapipe gathers
// uniform loads with vector instructions where it loops over the lanes for
// storage (bench/NOTES.md, row 57). Template parameters: TMV, TN, WG, S,
// PAD, U, XV, E1, FL, XT, WU, WU1.
// Needs cout % (4·TMV) == 0; x and out at any element offset, their channel
// planes x_plane and out_plane elements apart.
// Options, bindings 1 and 3–5 and the epilogue: conv_common.wgsl; shift4()
// comes from shift4.wgsl, texel() from texel.wgsl.

struct Params {
  cin: u32, cout4: u32, h: u32, w: u32,
  oh: u32, ow: u32, nseg: u32, x_off: u32,
  out_off: u32, mask_out_off: u32, x_plane: u32, out_plane: u32,
  cin2: u32, x2_off: u32, tex_shift: u32, _p1: u32,
}

// The parameters sit at index 0, read at an index the driver cannot fold
// (num_workgroups.x >> 31 is 0 for any legal count): lavapipe otherwise
// specialises kernels on the uniforms that steer their loops (bench/NOTES.md,
// row 41).
@group(0) @binding(0) var<uniform> params: array<Params, 2>;
var<private> pr: Params;
//#if 1 - WU
@group(0) @binding(2) var<storage, read> wt: array<vec4<f32>>;   // [ky][kx][cin][cout]
//#end
//#if WU
@group(0) @binding(2) var<uniform> wk0: array<vec4<f32>, 4096>;   // [kx][cin][cout] of ky 0
@group(0) @binding(11) var<uniform> wk1: array<vec4<f32>, 4096>;  // ky 1
@group(0) @binding(12) var<uniform> wk2: array<vec4<f32>, 4096>;  // ky 2
//#end
//#if XV * (1 - XT)
@group(0) @binding(6) var<storage, read> xv: array<vec4<f32>>;  // x again, as vec4 (XV only)
//#end
//#if XT
@group(0) @binding(10) var xtex: texture_2d<f32>;  // a copy of x's buffer (XT only)
//#end
//#if XV
// Vec4 k of x's buffer: from its texture copy with XT (vec4 k is texel
// (k mod 2^tex_shift, k >> tex_shift)); an index past the end reads 0 or
// some value of x, which the taps' masks drop.
fn xload(k: u32) -> vec4<f32> {
//#if XT
  return texel(xtex, k, pr.tex_shift);
//#end
//#if 1 - XT
  return xv[k];
//#end
}
//#end
//#if E1
//#if 1 - WU1
@group(0) @binding(7) var<storage, read> wone: array<vec4<f32>>;  // [cin2][cout] (E1 only)
//#end
//#if WU1
@group(0) @binding(7) var<uniform> wone: array<vec4<f32>, 4096>;
//#end
//#end
//#if FL
@group(0) @binding(8) var<storage, read_write> outq: array<vec4<f32>>;  // out again, as vec4 (FL only)
@group(0) @binding(9) var<storage, read> maskq: array<vec4<f32>>;  // mask_out as vec4 (FL only)
//#end

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(num_workgroups) nwg_p: vec3<u32>) {
  pr = params[nwg_p.x >> 31u];
  // Channel groups vary fastest over the workgroups (neighbouring launches
  // share their input rows while they are in the caches).
  let cog = wid.x * ${TMV}u;
  let hw = pr.x_plane;
  let tapstride = pr.cin * pr.cout4;
//#if 1 - FL
  let seg = wid.y * ${WG}u + li;
  let live = seg < pr.oh * pr.nseg;
  let sg = min(seg, pr.oh * pr.nseg - 1u);
  let oy = sg / pr.nseg;
  let ox0 = (sg % pr.nseg) * ${TN}u;
//#for t in 0..(TN-1)*S+3
  let cx${t} = i32(ox0 * ${S}u + ${t}u) - ${PAD};
  let cv${t} = cx${t} >= 0 && cx${t} < i32(pr.w);
  let cc${t} = u32(clamp(cx${t}, 0, i32(pr.w) - 1));
//#end
//#for ky in 0..3
  let ry${ky} = i32(oy * ${S}u + ${ky}u) - ${PAD};
  let rv${ky} = ry${ky} >= 0 && ry${ky} < i32(pr.h);
  let rb${ky} = u32(clamp(ry${ky}, 0, i32(pr.h) - 1)) * pr.w;
//#end
//#end
//#if FL
  let p0 = (wid.y * ${WG}u + li) * ${TN}u;
//#end
//#if FL * XV
  // Pixel j of the segment: live (inside the plane), and which of the rows
  // above/below (r0, r2) and columns left/right (c0, c2) exist.
  var fx = p0 % pr.w;
  var fy = p0 / pr.w;
//#for j in 0..TN
  let r1_${j} = p0 + ${j}u < pr.h * pr.w;
  let r0_${j} = r1_${j} && fy > 0u;
  let r2_${j} = r1_${j} && fy + 1u < pr.h;
  let c0_${j} = fx > 0u;
  let c1_${j} = true;
  let c2_${j} = fx + 1u < pr.w;
  fx += 1u;
  fy = select(fy, fy + 1u, fx == pr.w);
  fx = select(fx, 0u, fx == pr.w);
//#end
//#end
//#if FL * (1 - XV)
  // PAD 0: every tap of a live pixel is inside x. Pixel j's top-left tap at
  // element b_j of a plane (dead pixels past oh·ow read pixel 0's taps).
  var fx = p0 % pr.ow;
  var fy = p0 / pr.ow;
//#for j in 0..TN
  let b_${j} = select(0u, fy * ${S}u * pr.w + fx * ${S}u, p0 + ${j}u < pr.oh * pr.ow);
  fx += 1u;
  fy = select(fy, fy + 1u, fx == pr.ow);
  fx = select(fx, 0u, fx == pr.ow);
//#end
//#end
//#for i in 0..TMV
//#for j in 0..TN
  var a${i}_${j} = vec4<f32>(0.0);
//#end
//#end
//#for ky in 0..3
//#for kx in 0..3
  for (var c0 = 0u; c0 < pr.cin; c0 += ${U}u) {
//#for u in 0..U
    {
    let ci = c0 + ${u}u;
    let xc = ci * hw;
    let wc = ci * pr.cout4 + cog;
//#if XV
//#if 1 - FL
    let e = i32(pr.x_off + xc + rb${ky} + ox0 * ${S}u) + ${kx} - ${PAD};
//#end
//#if FL
    let e = i32(pr.x_off + xc + p0) + i32(pr.w) * ${ky} - i32(pr.w) + ${kx} - 1;
//#end
    let q = e >> 2u;
    let s = u32(e & 3);
//#for g in 0..TN*S/4+1
    let X${g} = xload(u32(q + ${g}));
//#end
//#for g in 0..TN*S/4
    let y${g} = shift4(X${g}, X${g+1}, s);
//#end
//#for j in 0..TN
//#if 1 - FL
    let v${j} = select(0.0, y${(j*S)/4}[${(j*S)%4}], rv${ky} && cv${j*S+kx});
//#end
//#if FL
    let v${j} = select(0.0, y${j/4}[${j%4}], r${ky}_${j} && c${kx}_${j});
//#end
//#end
//#end
//#if (1 - XV) * (1 - FL)
//#for j in 0..TN
    let v${j} = select(0.0, load_x(xc + rb${ky} + cc${j*S+kx}), rv${ky} && cv${j*S+kx});
//#end
//#end
//#if FL * (1 - XV)
//#for j in 0..TN
    let v${j} = load_x(xc + b_${j} + ${ky}u * pr.w + ${kx}u);
//#end
//#end
//#for i in 0..TMV
//#if 1 - WU
    let w${i} = wt[wc + ${ky*3+kx}u * tapstride + ${i}u];
//#end
//#if WU
    let w${i} = wk${ky}[wc + ${kx}u * tapstride + ${i}u];
//#end
//#end
//#for i in 0..TMV
//#for j in 0..TN
    a${i}_${j} = fma(w${i}, vec4<f32>(v${j}), a${i}_${j});
//#end
//#end
    }
//#end
  }
//#end
//#end
//#if E1
  // E1 (stride 1, PAD 1, XV): a 1×1 convolution of a second input in the
  // same buffer (at x2_off, cin2 channels, weights wone) summed in: the input
  // gradient of a fire module's expand1x1 beside that of its expand3x3.
  for (var c2 = 0u; c2 < pr.cin2; c2++) {
//#if FL
    // The flattened segment's own pixels: aligned vec4s, the live ones only.
    let e = (pr.x2_off + c2 * hw + p0) / 4u;
//#for g in 0..TN/4
    let X${g} = xload(e + ${g}u);
//#end
//#for j in 0..TN
    let v${j} = select(0.0, X${j/4}[${j%4}], r1_${j});
//#end
//#end
//#if 1 - FL
    let e = pr.x2_off + c2 * hw + rb1 + ox0;
    let q = e >> 2u;
    let s = e & 3u;
//#for g in 0..TN/4+1
    let X${g} = xload(q + ${g}u);
//#end
//#for g in 0..TN/4
    let y${g} = shift4(X${g}, X${g+1}, s);
//#end
//#for j in 0..TN
    let v${j} = select(0.0, y${j/4}[${j%4}], cv${j+1});
//#end
//#end
//#for i in 0..TMV
    let w${i} = wone[c2 * pr.cout4 + cog + ${i}u];
//#end
//#for i in 0..TMV
//#for j in 0..TN
    a${i}_${j} = fma(w${i}, vec4<f32>(v${j}), a${i}_${j});
//#end
//#end
  }
//#end
//#if 1 - FL
  let npix = pr.out_plane;
//#for i in 0..TMV
  {
    var b = vec4<f32>(0.0);
    if (HAS_BIAS) {
      b = bias[cog + ${i}u];
    }
    let ob = (cog + ${i}u) * 4u * npix + oy * pr.ow + ox0;
//#for j in 0..TN
    if (live && ox0 + ${j}u < pr.ow) {
      let v = a${i}_${j} + b;
      let o = ob + ${j}u;
      store(o, v.x);
      store(o + npix, v.y);
      store(o + 2u * npix, v.z);
      store(o + 3u * npix, v.w);
    }
//#end
  }
//#end
//#end
//#if FL
  // The epilogue of store() on vec4s; the vec4s past H·W but inside the
  // plane get values too (padding, which nothing reads).
  let q4 = pr.out_plane / 4u;
//#for i in 0..TMV
  {
    var b = vec4<f32>(0.0);
    if (HAS_BIAS) {
      b = bias[cog + ${i}u];
    }
//#for k in 0..4
    {
      let ob = pr.out_off / 4u + ((cog + ${i}u) * 4u + ${k}u) * q4 + p0 / 4u;
//#for g in 0..TN/4
      if (p0 + ${4*g}u < pr.out_plane) {
        var r = vec4<f32>(a${i}_${4*g}[${k}], a${i}_${4*g+1}[${k}], a${i}_${4*g+2}[${k}], a${i}_${4*g+3}[${k}]) + vec4<f32>(b[${k}]);
        if (ACCUMULATE) {
          r += outq[ob + ${g}u];
        }
        if (RELU) {
          r = max(r, vec4<f32>(0.0));
        }
        if (MASK_OUT) {
          let mo = pr.mask_out_off / 4u + ((cog + ${i}u) * 4u + ${k}u) * q4 + p0 / 4u;
          r = select(vec4<f32>(0.0), r, maskq[mo + ${g}u] > vec4<f32>(0.0));
        }
        outq[ob + ${g}u] = r;
      }
//#end
    }
//#end
  }
//#end
//#end
}
