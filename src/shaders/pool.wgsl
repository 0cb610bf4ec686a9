// Max pooling 3x3 stride 2 in ceil mode (PyTorch ceil_mode=True): windows
// that start inside the input are kept and clipped at the edge.
// `forward` also writes the argmax (flat index within the channel, first
// maximum in scan order, as PyTorch) that `backward` uses to route gradients.

override K: u32 = 3u;
override STRIDE: u32 = 2u;

struct Params {
  c: u32, h: u32, w: u32, oh: u32, ow: u32,
  x_off: u32, out_off: u32, _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;
@group(0) @binding(3) var<storage, read_write> argmax: array<u32>;

@compute @workgroup_size(64, 1, 1)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let n = p.oh * p.ow;
  let idx = gid.x;
  if (idx >= p.c * n) {
    return;
  }
  let c = idx / n;
  let o = idx % n;
  let y0 = (o / p.ow) * STRIDE;
  let x0 = (o % p.ow) * STRIDE;
  let y1 = min(y0 + K, p.h);
  let x1 = min(x0 + K, p.w);
  let base = p.x_off + c * p.h * p.w;
  var best = x[base + y0 * p.w + x0];
  var arg = y0 * p.w + x0;
  for (var yy = y0; yy < y1; yy++) {
    for (var xx = x0; xx < x1; xx++) {
      let v = x[base + yy * p.w + xx];
      if (v > best) {
        best = v;
        arg = yy * p.w + xx;
      }
    }
  }
  out[p.out_off + idx] = best;
  argmax[idx] = arg;
}

// dx[c, i] = sum of dy over the windows whose argmax is i (K 3, STRIDE 2 only).
// Here `x` holds dy (at x_off) and `out` receives dx (at out_off); h, w are
// the input size. Each invocation owns a 2×2 block of dx (rows 2a, 2a+1;
// columns 2b, 2b+1): only windows (a−1 or a, b−1 or b) can reach it, so each
// window's argmax and dy are loaded once for the 4 pixels.
@compute @workgroup_size(64, 1, 1)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let bh = (p.h + 1u) / 2u;
  let bw = (p.w + 1u) / 2u;
  let idx = gid.x;
  if (idx >= p.c * bh * bw) {
    return;
  }
  let c = idx / (bh * bw);
  let a = (idx % (bh * bw)) / bw;
  let b = idx % bw;
  let n = p.oh * p.ow;
  var acc = vec4<f32>(0.0); // pixels (2a,2b), (2a,2b+1), (2a+1,2b), (2a+1,2b+1)
  let i00 = (2u * a) * p.w + 2u * b;
  for (var dy = 0u; dy < 2u; dy++) {
    let oy = a + dy;
    if (oy < 1u || oy > p.oh) {
      continue;
    }
    for (var dx = 0u; dx < 2u; dx++) {
      let ox = b + dx;
      if (ox < 1u || ox > p.ow) {
        continue;
      }
      let o = c * n + (oy - 1u) * p.ow + (ox - 1u);
      let am = argmax[o];
      let g = x[p.x_off + o];
      acc += select(vec4<f32>(0.0), vec4<f32>(g), vec4<u32>(am) == vec4<u32>(i00, i00 + 1u, i00 + p.w, i00 + p.w + 1u));
    }
  }
  let base = p.out_off + c * p.h * p.w + i00;
  let right = 2u * b + 1u < p.w;
  let below = 2u * a + 1u < p.h;
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
