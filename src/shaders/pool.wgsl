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

// dx[c, i] = sum of dy over the windows whose argmax is i. Here `x` holds dy
// (at x_off) and `out` receives dx (at out_off); h, w are the input size.
@compute @workgroup_size(64, 1, 1)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let hw = p.h * p.w;
  let idx = gid.x;
  if (idx >= p.c * hw) {
    return;
  }
  let c = idx / hw;
  let i = idx % hw;
  let iy = i / p.w;
  let ix = i % p.w;
  // Windows oy with oy*S <= iy < oy*S + K.
  let oy_lo = select(0u, (iy - K + STRIDE) / STRIDE, iy + STRIDE >= K);
  let oy_hi = min(iy / STRIDE, p.oh - 1u);
  let ox_lo = select(0u, (ix - K + STRIDE) / STRIDE, ix + STRIDE >= K);
  let ox_hi = min(ix / STRIDE, p.ow - 1u);
  var acc = 0.0;
  let n = p.oh * p.ow;
  for (var oy = oy_lo; oy <= oy_hi; oy++) {
    for (var ox = ox_lo; ox <= ox_hi; ox++) {
      let o = c * n + oy * p.ow + ox;
      if (argmax[o] == i) {
        acc += x[p.x_off + o];
      }
    }
  }
  out[p.out_off + idx] = acc;
}
