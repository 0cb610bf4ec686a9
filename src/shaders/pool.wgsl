// Max pooling 3x3 stride 2 in ceil mode (PyTorch ceil_mode=True): windows
// that start inside the input are kept and clipped at the edge.
// `forward` also writes the argmax (flat index within the channel, first
// maximum in scan order, as PyTorch) that `backward` uses to route gradients.
// Template parameter Q: outputs (forward) or 2×2 blocks of dx (backward) per
// invocation along a row, so neighbouring windows share their loads.

// Channel planes are `hp` elements apart on the h×w side (forward input,
// backward output) and `op` on the oh×ow side (pooled values, argmax, dy).
struct Params {
  c: u32, h: u32, w: u32, oh: u32, ow: u32,
  x_off: u32, out_off: u32, nseg: u32,
  hp: u32, op: u32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> argmax: array<u32>;

// Q outputs (oy, ox0 … ox0+Q−1) per invocation: their windows cover input
// rows 2oy … 2oy+2 and the 2Q+1 columns from 2·ox0, each loaded once.
@compute @workgroup_size(64, 1, 1)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>) {
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
//#for ky in 0..3
  let rv${ky} = y0 + ${ky}u < p.h;
  let rb${ky} = base + min(y0 + ${ky}u, p.h - 1u) * p.w;
//#end
//#for t in 0..2*Q+1
  let cv${t} = x0 + ${t}u < p.w;
  let cc${t} = min(x0 + ${t}u, p.w - 1u);
//#for ky in 0..3
  let v${ky}_${t} = x[rb${ky} + cc${t}];
//#end
//#end
  let ob = c * p.op + oy * p.ow + ox0;
//#for q in 0..Q
  if (ox0 + ${q}u < p.ow) {
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
  }
//#end
}

// dx[c, i] = sum of dy over the windows whose argmax is i. Here `x` holds dy
// (at x_off) and `out` receives dx (at out_off); h, w are the input size.
// An invocation owns Q 2×2 blocks of dx along a row (rows 2a, 2a+1; columns
// 2b … 2b+2Q−1 from b = b0): only windows (a−1 or a, b0−1 … b0+Q−1) reach
// them, so each window's argmax and dy are loaded once. Each pixel sums its
// windows in the order (a−1, b−1), (a−1, b), (a, b−1), (a, b).
@compute @workgroup_size(64, 1, 1)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let bh = (p.h + 1u) / 2u;
  let rows = bh * p.nseg;
  if (gid.x >= p.c * rows) {
    return;
  }
  let c = gid.x / rows;
  let r = gid.x % rows;
  let a = r / p.nseg;
  let b0 = (r % p.nseg) * ${Q}u;
  // Window (a − 1 + dy, b0 − 1 + t): its argmax, or an index no pixel has.
//#for dy in 0..2
//#for t in 0..Q+1
  var am${dy}_${t} = 0xffffffffu;
  var g${dy}_${t} = 0.0;
  {
    let oy = a + ${dy}u;
    let ox = b0 + ${t}u;
    if (oy >= 1u && oy <= p.oh && ox >= 1u && ox <= p.ow) {
      let o = c * p.op + (oy - 1u) * p.ow + (ox - 1u);
      am${dy}_${t} = argmax[o];
      g${dy}_${t} = x[p.x_off + o];
    }
  }
//#end
//#end
  let below = 2u * a + 1u < p.h;
//#for q in 0..Q
  {
    let b = b0 + ${q}u;
    let i00 = (2u * a) * p.w + 2u * b;
    let ids = vec4<u32>(i00, i00 + 1u, i00 + p.w, i00 + p.w + 1u);
    var acc = vec4<f32>(0.0); // pixels (2a,2b), (2a,2b+1), (2a+1,2b), (2a+1,2b+1)
//#for dy in 0..2
//#for dx in 0..2
    acc += select(vec4<f32>(0.0), vec4<f32>(g${dy}_${q+dx}), vec4<u32>(am${dy}_${q+dx}) == ids);
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
