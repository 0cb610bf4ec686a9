// One Adam step (PyTorch's formulation) on the image, then a clamp to valid
// pixels: per channel c, x in [-mean_c, 255 - mean_c].
//   m = b1·m + (1−b1)·g;  v = b2·v + (1−b2)·g²
//   x −= (lr / (1−b1^t)) · m / (sqrt(v) / sqrt(1−b2^t) + eps)

struct Params {
  n: u32, hw: u32, _p0: u32, _p1: u32,
  lr: f32, beta1: f32, beta2: f32, eps: f32,
  bc1: f32, bc2: f32, _p2: f32, _p3: f32,
  lo: vec4<f32>,
  hi: vec4<f32>,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
@group(0) @binding(3) var<storage, read_write> m: array<f32>;
@group(0) @binding(4) var<storage, read_write> v: array<f32>;

@compute @workgroup_size(64, 1, 1)
fn step(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= p.n) {
    return;
  }
  let gi = g[i];
  let mi = p.beta1 * m[i] + (1.0 - p.beta1) * gi;
  let vi = p.beta2 * v[i] + (1.0 - p.beta2) * gi * gi;
  m[i] = mi;
  v[i] = vi;
  let denom = sqrt(vi) / sqrt(p.bc2) + p.eps;
  let c = i / p.hw;
  let xi = x[i] - (p.lr / p.bc1) * mi / denom;
  x[i] = clamp(xi, p.lo[c], p.hi[c]);
}
