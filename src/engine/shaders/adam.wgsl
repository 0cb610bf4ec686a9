// One Adam step (PyTorch's formulation) on the image, then a clamp to valid
// pixels: per channel c (three), x in [-mean_c, 255 - mean_c].
//   m = b1·m + (1−b1)·g;  v = b2·v + (1−b2)·g²
//   x −= (lr / (1−b1^t)) · m / (sqrt(v) / sqrt(1−b2^t) + eps)
// With AVG, the average of the iterates after the clamp (reference.py's Ema):
//   a = d·a + (1−d)·x     (a starts at 0; a / (1 − d^t) is the average).

override AVG: bool = false;

struct Params {
  n: u32, hw: u32, flag_at: u32, _p1: u32,
  lr: f32, beta1: f32, beta2: f32, eps: f32,
  bc1: f32, bc2: f32, decay: f32, _p3: f32,
  lo: vec4<f32>,
  hi: vec4<f32>,
}

// The parameters sit at index 0, read at an index the driver cannot fold
// (num_workgroups.x >> 31 is 0 for any legal count): lavapipe otherwise
// specialises kernels on the uniforms that steer their loops (bench/NOTES.md,
// row 41).
@group(0) @binding(0) var<uniform> params: array<Params, 2>;
var<private> p: Params;
@group(0) @binding(1) var<storage, read> g: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> m: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> v: array<vec4<f32>>;
// flags[flag_at] becomes 1 when a gradient element is not finite (an f32
// whose exponent bits are all ones: ±inf or NaN, tested on the bits since
// WGSL lets a compiler assume floats are finite); the step program clears it
// before its launches, and the loop reads it back with the loss terms.
@group(0) @binding(5) var<storage, read_write> flags: array<atomic<u32>>;
@group(0) @binding(6) var<storage, read_write> avg: array<vec4<f32>>;

// Four pixels per invocation (a vec4 access costs lavapipe about what 1.6
// scalar ones do). The last vec4 may run past n into the buffers' padding
// (their sizes are multiples of 16 bytes), which nothing reads.
@compute @workgroup_size(64, 1, 1)
fn step(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg_p: vec3<u32>) {
  p = params[nwg_p.x >> 31u];
  // Numbered across a 2D grid (a large image needs more workgroups than one
  // dimension holds).
  let i = gid.x + gid.y * nwg_p.x * 64u;
  if (i * 4u >= p.n) {
    return;
  }
  let gi = g[i];
  let exponent = vec4<u32>(0x7f800000u);
  if (any((bitcast<vec4<u32>>(gi) & exponent) == exponent)) {
    atomicMax(&flags[p.flag_at], 1u);
  }
  let mi = p.beta1 * m[i] + (1.0 - p.beta1) * gi;
  let vi = p.beta2 * v[i] + (1.0 - p.beta2) * gi * gi;
  m[i] = mi;
  v[i] = vi;
  let denom = sqrt(vi) / sqrt(p.bc2) + p.eps;
  // Each element's channel, for its clamp bounds.
  let e = vec4<u32>(4u * i) + vec4<u32>(0u, 1u, 2u, 3u);
  let c1 = e >= vec4<u32>(p.hw);
  let c2 = e >= vec4<u32>(2u * p.hw);
  let lo = select(select(vec4<f32>(p.lo.x), vec4<f32>(p.lo.y), c1), vec4<f32>(p.lo.z), c2);
  let hi = select(select(vec4<f32>(p.hi.x), vec4<f32>(p.hi.y), c1), vec4<f32>(p.hi.z), c2);
  let xi = clamp(x[i] - (p.lr / p.bc1) * mi / denom, lo, hi);
  x[i] = xi;
  if (AVG) {
    avg[i] = p.decay * avg[i] + (1.0 - p.decay) * xi;
  }
}
