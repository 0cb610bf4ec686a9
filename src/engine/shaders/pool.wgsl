// Pooling 3x3 stride 2 in ceil mode (PyTorch ceil_mode=True): windows that
// start inside the input are kept and clipped at the edge.
// Template parameter AVG selects the reduction:
// - AVG 0, max pooling: `forward` also writes the argmax (flat index within
//   the channel, first maximum in scan order, as PyTorch) that `backward`
//   uses to route gradients;
// - AVG 1, average pooling: `forward` divides each window's sum by the
//   number of its elements inside the input (PyTorch's avg_pool2d with
//   padding 0), and `backward` spreads dy over those elements, divided by the
//   same count; no argmax.
// Template parameter Q (a multiple of 4): outputs (forward) or 2×2 blocks of
// dx (backward) per invocation along a row, so neighbouring windows share
// their loads. shift4() comes from shift4.wgsl, texel() from texel.wgsl.

// Channel planes are `hp` elements apart on the h×w side (forward input,
// backward output) and `op` on the oh×ow side (pooled values, argmax, dy).
struct Params {
  c: u32, h: u32, w: u32, oh: u32, ow: u32,
  x_off: u32, out_off: u32, nseg: u32,
  hp: u32, op: u32, tex_shift: u32, _p1: u32,
}

// The parameters sit at index 0, read at an index the driver cannot fold
// (num_workgroups.x >> 31 is 0 for any legal count): lavapipe otherwise
// specialises kernels on the uniforms that steer their loops (bench/NOTES.md,
// row 41).
@group(0) @binding(0) var<uniform> params: array<Params, 2>;
var<private> p: Params;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
//#if 1 - AVG
@group(0) @binding(3) var<storage, read_write> argmax: array<u32>;
//#end
// The input (x or dy) and the argmax as vec4s (rows are loaded as aligned
// vec4s).
//#if 1 - XT
@group(0) @binding(4) var<storage, read> xv: array<vec4<f32>>;
//#end
//#if 1 - AVG
@group(0) @binding(5) var<storage, read> argmax4: array<vec4<u32>>;
//#end
//#if XT
// XT (forward only): x fetched from a texture copy of its buffer (a
// FeatureTexture, src/engine/ops/context.ts: vec4 k is texel (k mod 2^tex_shift,
// k >> tex_shift)), faster on lavapipe than storage loads.
@group(0) @binding(6) var xtex: texture_2d<f32>;
//#end

// Vec4 k of the input's buffer.
fn xload(k: u32) -> vec4<f32> {
//#if XT
  return texel(xtex, k, p.tex_shift);
//#end
//#if 1 - XT
  return xv[k];
//#end
}

//#if 1 - AVG
// shift4() for u32s.
fn shift4u(a: vec4<u32>, b: vec4<u32>, s: u32) -> vec4<u32> {
  let t1 = vec4<u32>(a.yzw, b.x);
  let t2 = vec4<u32>(a.zw, b.xy);
  let t3 = vec4<u32>(a.w, b.xyz);
  return select(select(select(a, t1, s == 1u), t2, s == 2u), t3, s == 3u);
}
//#end

// Q outputs (oy, ox0 … ox0+Q−1) per invocation: their windows cover input
// rows 2oy … 2oy+2 and the 2Q+1 columns from 2·ox0, each loaded once.
@compute @workgroup_size(64, 1, 1)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg_p: vec3<u32>) {
  p = params[nwg_p.x >> 31u];
  let rows = p.oh * p.nseg;
  if (gid.x >= p.c * rows) {
    return;
  }
  let c = gid.x / rows;
  let r = gid.x % rows;
  let oy = r / p.nseg;
  let ox0 = (r % p.nseg) * ${Q}u;
  let y0 = 2u * oy;
  let x0 = 2u * ox0;
  let base = p.x_off + c * p.hp;
  // Each of the 3 rows' 2Q+1 values as aligned vec4s realigned in registers
  // (values past the row's end are masked by cv).
//#for ky in 0..3
  let rv${ky} = y0 + ${ky}u < p.h;
  let e${ky} = base + min(y0 + ${ky}u, p.h - 1u) * p.w + x0;
  let s${ky} = e${ky} & 3u;
//#for g in 0..Q/2+2
  let X${ky}_${g} = xload((e${ky} >> 2u) + ${g}u);
//#end
//#for g in 0..Q/2+1
  let y${ky}_${g} = shift4(X${ky}_${g}, X${ky}_${g+1}, s${ky});
//#end
//#end
//#for t in 0..2*Q+1
  let cv${t} = x0 + ${t}u < p.w;
//#for ky in 0..3
  let v${ky}_${t} = y${ky}_${t/4}[${t%4}];
//#end
//#end
  let ob = c * p.op + oy * p.ow + ox0;
  // AVG 1: the window's elements inside the input, summed in scan order,
  // over their count.
//#for q in 0..Q
  if (ox0 + ${q}u < p.ow) {
//#if AVG
    var sum = 0.0;
//#for ky in 0..3
//#for kx in 0..3
    sum += select(0.0, v${ky}_${2*q+kx}, rv${ky} && cv${2*q+kx});
//#end
//#end
    let n = min(3u, p.h - y0) * min(3u, p.w - x0 - ${2*q}u);
    out[p.out_off + ob + ${q}u] = sum / f32(n);
//#end
//#if 1 - AVG
    var best = v0_${2*q};
    var arg = y0 * p.w + x0 + ${2*q}u;
//#for ky in 0..3
//#for kx in 0..3
    if (rv${ky} && cv${2*q+kx} && v${ky}_${2*q+kx} > best) {
      best = v${ky}_${2*q+kx};
      arg = (y0 + ${ky}u) * p.w + x0 + ${2*q+kx}u;
    }
//#end
//#end
    out[p.out_off + ob + ${q}u] = best;
    argmax[ob + ${q}u] = arg;
//#end
  }
//#end
}

// dx[c, i] = sum of dy over the windows whose argmax is i (AVG 1: over the
// windows that hold i, each dy divided by its window's count of elements
// inside the input). Here `xv` holds dy (at x_off) and `out` receives dx (at
// out_off); h, w are the input size.
// An invocation owns Q 2×2 blocks of dx along a row (rows 2a, 2a+1; columns
// 2b … 2b+2Q−1 from b = b0): only windows (a−1 or a, b0−1 … b0+Q−1) reach
// them, so each window's argmax and dy are loaded once. Each pixel sums its
// windows in the order (a−1, b−1), (a−1, b), (a, b−1), (a, b).
@compute @workgroup_size(64, 1, 1)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg_p: vec3<u32>) {
  p = params[nwg_p.x >> 31u];
  let bh = (p.h + 1u) / 2u;
  let rows = bh * p.nseg;
  if (gid.x >= p.c * rows) {
    return;
  }
  let c = gid.x / rows;
  let r = gid.x % rows;
  let a = r / p.nseg;
  let b0 = (r % p.nseg) * ${Q}u;
  // Window (a − 1 + dy, b0 − 1 + t): its argmax, or an index no pixel has
  // (AVG 1: dy over the window's count of elements inside the input, its
  // row and column clamped to the grid).
  // Each row's Q+1 windows as aligned vec4s of argmax and dy realigned in
  // registers; windows outside the pooled grid are masked.
//#for dy in 0..2
  let oy${dy} = a + ${dy}u;
  let ov${dy} = oy${dy} >= 1u && oy${dy} <= p.oh;
  // Row oy − 1 (clamped), window column b0 − 1: i32, as it may start at −1.
  let e${dy} = i32(c * p.op + (min(max(oy${dy}, 1u), p.oh) - 1u) * p.ow + b0) - 1;
//#if 1 - AVG
  let s${dy} = u32(e${dy} & 3);
//#end
  let ea${dy} = e${dy} + i32(p.x_off);
  let sa${dy} = u32(ea${dy} & 3);
//#if AVG
  let ny${dy} = min(3u, p.h - 2u * (min(max(oy${dy}, 1u), p.oh) - 1u));
//#end
//#for g in 0..Q/4+2
//#if 1 - AVG
  let M${dy}_${g} = argmax4[u32((e${dy} >> 2u) + ${g})];
//#end
  let D${dy}_${g} = xload(u32((ea${dy} >> 2u) + ${g}));
//#end
//#for g in 0..Q/4+1
//#if 1 - AVG
  let m${dy}_${g} = shift4u(M${dy}_${g}, M${dy}_${g+1}, s${dy});
//#end
  let d${dy}_${g} = shift4(D${dy}_${g}, D${dy}_${g+1}, sa${dy});
//#end
//#for t in 0..Q+1
  let k${dy}_${t} = ov${dy} && b0 + ${t}u >= 1u && b0 + ${t}u <= p.ow;
//#if 1 - AVG
  let am${dy}_${t} = select(0xffffffffu, m${dy}_${t/4}[${t%4}], k${dy}_${t});
  let g${dy}_${t} = select(0.0, d${dy}_${t/4}[${t%4}], k${dy}_${t});
//#end
//#if AVG
  let n${dy}_${t} = ny${dy} * min(3u, p.w - 2u * (min(max(b0 + ${t}u, 1u), p.ow) - 1u));
  let g${dy}_${t} = select(0.0, d${dy}_${t/4}[${t%4}] / f32(n${dy}_${t}), k${dy}_${t});
//#end
//#end
//#end
  let below = 2u * a + 1u < p.h;
//#for q in 0..Q
  {
    let b = b0 + ${q}u;
    let i00 = (2u * a) * p.w + 2u * b;
//#if 1 - AVG
    let ids = vec4<u32>(i00, i00 + 1u, i00 + p.w, i00 + p.w + 1u);
//#end
    var acc = vec4<f32>(0.0); // pixels (2a,2b), (2a,2b+1), (2a+1,2b), (2a+1,2b+1)
//#if AVG
    // Window (a − 1 + dy, b − 1 + dx) spans rows 2a − 2 + 2dy … 2a + 2dy and
    // columns 2b − 2 + 2dx … 2b + 2dx: it holds pixel (2a + r, 2b + s) when
    // r ≤ dy and s ≤ dx.
//#end
//#for dy in 0..2
//#for dx in 0..2
//#if 1 - AVG
    acc += select(vec4<f32>(0.0), vec4<f32>(g${dy}_${q+dx}), vec4<u32>(am${dy}_${q+dx}) == ids);
//#end
//#if AVG
    acc.x += g${dy}_${q+dx};
//#if dx
    acc.y += g${dy}_${q+dx};
//#end
//#if dy
    acc.z += g${dy}_${q+dx};
//#end
//#if dx * dy
    acc.w += g${dy}_${q+dx};
//#end
//#end
//#end
//#end
    if (2u * b < p.w) {
      let base = p.out_off + c * p.hp + i00;
      let right = 2u * b + 1u < p.w;
      out[base] = acc.x;
      if (right) {
        out[base + 1u] = acc.y;
      }
      if (below) {
        out[base + p.w] = acc.z;
        if (right) {
          out[base + p.w + 1u] = acc.w;
        }
      }
    }
  }
//#end
}
