// 1×1 convolution as a register-tiled GEMM on vec4s of 4 pixels:
// out[co][p] = Σ_ci W[ci][co]·x[ci][p] (+ bias, ReLU). Serves the squeeze and
// expand1x1 layers, their input gradients (with the transposed kernel) and
// the Gram backward (W = dG).
// Needs the network's padded layout (planeStride() in src/engine/ops/context.ts):
// channel planes `plane` elements apart with plane and every offset a
// multiple of 4, and cout % (4·TMV) == 0. All plane/4 pixel groups are
// computed, the padding included: each output pixel depends only on the same
// input pixel, so the padding stays in the padding. With `extent` (a
// multiple of 4), only each plane's first `extent` pixels are.
// Template parameters (src/engine/gpu/template.ts): TMV vec4 groups of output
// channels × TN vec4 pixel groups per invocation, the groups of a lane
// strided by WG (group j = base + j·WG + lane); WG invocations; E1 (below).
// Options and bias (binding 3): conv_common.wgsl; x, out and the mask are
// read here through vec4 views (bindings 6–8).
// E1: a second input (binding 11, laid out as x, at x2_off) whose 1×1
// convolution by wt1 [cin2][cout] (binding 12) is summed in after the first:
// two gradients of one layer in one launch.
// WU0, WU1: wt0 / wt1 read as NC0 / NC1 uniform arrays of 64 KB (up to 4,
// each holding 4096 / (cout/4) input channels' rows), which lavapipe loads
// with gathers instead of a loop over the lanes (bench/NOTES.md, rows
// 57–58); NC 1 without them.
// CONTENT: the content loss of the output layer F (the mask, binding 8) is
// fused into the epilogue: out = result + 2w·(F − P) before the mask
// (P at binding 9, laid out as out), and each invocation writes
// w·Σ(F − P)² over its valid pixels (< npix in each plane) to
// parts[part_off + its index] (binding 10).

override CONTENT: bool = false;

struct Params {
  cin: u32, cout4: u32, plane: u32, x_off: u32,
  out_off: u32, mask_out_off: u32, npix: u32, part_off: u32,
  cweight: f32, cin2: u32, x2_off: u32, tex_shift0: u32,
  tex_shift1: u32, tex_shiftm: u32, tex_shiftc: u32, extent: u32,
  scale_off: u32, _s1: u32, _s2: u32, _s3: u32,
}

// The parameters sit at index 0, read at an index the driver cannot fold
// (num_workgroups.x >> 31 is 0 for any legal count): lavapipe otherwise
// specialises kernels on the uniforms that steer their loops (bench/NOTES.md,
// row 41).
@group(0) @binding(0) var<uniform> params: array<Params, 2>;
var<private> pr: Params;
//#if 1 - WU0
@group(0) @binding(2) var<storage, read> wt0: array<vec4<f32>>;   // [cin][cout]
//#end
//#if WU0
@group(0) @binding(2) var<uniform> wt0_0: array<vec4<f32>, 4096>;
//#end
//#for c in 1..NC0
@group(0) @binding(${17+c}) var<uniform> wt0_${c}: array<vec4<f32>, 4096>;
//#end
@group(0) @binding(7) var<storage, read_write> outq: array<vec4<f32>>;
//#if E1 * (1 - WU1)
@group(0) @binding(12) var<storage, read> wt1: array<vec4<f32>>;   // [cin2][cout]
//#end
//#if E1 * WU1
@group(0) @binding(12) var<uniform> wt1_0: array<vec4<f32>, 4096>;
//#end
//#for c in 1..NC1
@group(0) @binding(${20+c}) var<uniform> wt1_${c}: array<vec4<f32>, 4096>;
//#end
// The inputs and the mask, each from its buffer or (XT0, XT1, MT) from a
// texture copy of it (a FeatureTexture, src/engine/ops/context.ts: vec4 k of the
// buffer is texel (k mod 2^shift, k >> shift)), which lavapipe fetches
// faster than it loads storage (bench/NOTES.md, row 54); texel() comes
// from texel.wgsl.
//#if 1 - XT0
@group(0) @binding(6) var<storage, read> xin0: array<vec4<f32>>;
//#end
//#if XT0
@group(0) @binding(14) var xtex0: texture_2d<f32>;
//#end
//#if E1 * (1 - XT1)
@group(0) @binding(11) var<storage, read> xin1: array<vec4<f32>>;
//#end
//#if E1 * XT1
@group(0) @binding(15) var xtex1: texture_2d<f32>;
//#end
//#if 1 - MT
@group(0) @binding(8) var<storage, read> maskq: array<vec4<f32>>;
//#end
//#if MT
@group(0) @binding(16) var mtex: texture_2d<f32>;
//#end

fn xload0(k: u32) -> vec4<f32> {
//#if XT0
  return texel(xtex0, k, pr.tex_shift0);
//#end
//#if 1 - XT0
  return xin0[k];
//#end
}

//#if E1
fn xload1(k: u32) -> vec4<f32> {
//#if XT1
  return texel(xtex1, k, pr.tex_shift1);
//#end
//#if 1 - XT1
  return xin1[k];
//#end
}
//#end

fn mload(k: u32) -> vec4<f32> {
//#if MT
  return texel(mtex, k, pr.tex_shiftm);
//#end
//#if 1 - MT
  return maskq[k];
//#end
}
// The content target P: its buffer, or (CT) a texture holding it as the
// textures above hold their buffers.
//#if 1 - CT
@group(0) @binding(9) var<storage, read> ctarget: array<vec4<f32>>;
//#end
//#if CT
@group(0) @binding(17) var cttex: texture_2d<f32>;
//#end

fn pload(k: u32) -> vec4<f32> {
//#if CT
  return texel(cttex, k, pr.tex_shiftc);
//#end
//#if 1 - CT
  return ctarget[k];
//#end
}
@group(0) @binding(10) var<storage, read_write> parts: array<f32>;
// SC: per-pixel weights (binding 13; pixel p of every plane at scale_off + p)
// the result is multiplied by before it is added into out: the backward of a
// weighted Gram, dF += w ⊙ (dG·F) (src/engine/shaders/gram.wgsl, W).
//#if SC
@group(0) @binding(13) var<storage, read> scaleq: array<vec4<f32>>;
//#end

// The invocation's sum of squared content differences (CONTENT).
var<private> csum: f32;

// Writes 4 pixels of one channel at vec4 index o (relative to out_off/4),
// pixels 4q … 4q+3 of their plane.
fn store4(o: u32, q: u32, v: vec4<f32>) {
  var r = v;
//#if SC
  r *= scaleq[pr.scale_off / 4u + q];
//#end
  if (ACCUMULATE) {
    r += outq[pr.out_off / 4u + o];
  }
  // The mask's values, loaded once (with a content term they are F).
  var m = vec4<f32>(0.0);
  if (CONTENT || MASK_OUT) {
    m = mload(pr.mask_out_off / 4u + o);
  }
  if (CONTENT) {
    let f = m;
    let valid = vec4<u32>(4u * q) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(pr.npix);
    let d = select(vec4<f32>(0.0), f - pload(o), valid);
    r += 2.0 * pr.cweight * d;
    csum += dot(d, d);
  }
  if (RELU) {
    r = max(r, vec4<f32>(0.0));
  }
  if (MASK_OUT) {
    r = select(vec4<f32>(0.0), r, m > vec4<f32>(0.0));
  }
  outq[pr.out_off / 4u + o] = r;
}

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32, @builtin(num_workgroups) nwg_p: vec3<u32>) {
  pr = params[nwg_p.x >> 31u];
  csum = 0.0;
  let n4 = pr.plane / 4u;
  // Pixel groups computed per plane: all of it, or its first extent / 4
  // (a slice of a plane: the rows one tile of a split image owns).
  let e4 = select(n4, pr.extent / 4u, pr.extent != 0u);
  let cog = wid.x * ${TMV}u;
  let g0 = wid.y * ${WG*TN}u + li;
//#for j in 0..TN
  let q${j} = min(g0 + ${j*WG}u, e4 - 1u);
//#end
//#for i in 0..TMV
//#for k in 0..4
//#for j in 0..TN
  var a${i}_${k}_${j} = vec4<f32>(0.0);
//#end
//#end
//#end
  // Input s (the second one with E1): cin_s channels at xoff_s (elements).
  let cin0 = pr.cin;
  let xoff0 = pr.x_off;
  let cin1 = pr.cin2;
  let xoff1 = pr.x2_off;
  // Input s's weights: its storage buffer, or NC_s uniform arrays of kr_s
  // rows each (the input channels in order).
  let kr0 = select(cin0, 4096u / pr.cout4, ${WU0} == 1);
  let kr1 = select(cin1, 4096u / pr.cout4, ${WU1} == 1);
//#for s in 0..1+E1
//#for c in 0..NC0+s*(NC1-NC0)
  for (var ci = ${c}u * kr${s}; ci < min(cin${s}, ${c+1}u * kr${s}); ci++) {
    let wr = (ci - ${c}u * kr${s}) * pr.cout4 + cog;
    let xr = (xoff${s} + ci * pr.plane) / 4u;
//#for i in 0..TMV
//#if WU0+s*(WU1-WU0)
    let w${i} = wt${s}_${c}[wr + ${i}u];
//#end
//#if 1-(WU0+s*(WU1-WU0))
    let w${i} = wt${s}[wr + ${i}u];
//#end
//#end
//#for j in 0..TN
    let x${j} = xload${s}(xr + q${j});
//#end
//#for i in 0..TMV
//#for j in 0..TN
    a${i}_0_${j} = fma(vec4<f32>(w${i}.x), x${j}, a${i}_0_${j});
    a${i}_1_${j} = fma(vec4<f32>(w${i}.y), x${j}, a${i}_1_${j});
    a${i}_2_${j} = fma(vec4<f32>(w${i}.z), x${j}, a${i}_2_${j});
    a${i}_3_${j} = fma(vec4<f32>(w${i}.w), x${j}, a${i}_3_${j});
//#end
//#end
  }
//#end
//#end
//#for i in 0..TMV
  {
    var b = vec4<f32>(0.0);
    if (HAS_BIAS) {
      b = bias[cog + ${i}u];
    }
//#for k in 0..4
    {
      let ob = (cog * 4u + ${i*4+k}u) * n4 + g0;
//#for j in 0..TN
      if (g0 + ${j*WG}u < e4) {
        store4(ob + ${j*WG}u, g0 + ${j*WG}u, a${i}_${k}_${j} + vec4<f32>(b[${k}]));
      }
//#end
    }
//#end
  }
//#end
  if (CONTENT) {
    parts[pr.part_off + (wid.y * nwg_p.x + wid.x) * ${WG}u + li] = pr.cweight * csum;
  }
}
