// ReLU backward, in place: g = g·(y > 0), where y is the ReLU's output.
// Applied once to a layer's output gradient after every contribution to it
// has been added, so the convolutions that consume it need no mask.

struct Params {
  n: u32, g_off: u32, y_off: u32, _pad: u32,
}

// The parameters sit at index 0, read at an index the driver cannot fold
// (num_workgroups.x >> 31 is 0 for any legal count): lavapipe otherwise
// specialises kernels on the uniforms that steer their loops (bench/NOTES.md,
// row 41).
@group(0) @binding(0) var<uniform> params: array<Params, 2>;
var<private> pr: Params;
@group(0) @binding(1) var<storage, read_write> g: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg_p: vec3<u32>) {
  pr = params[nwg_p.x >> 31u];
  // 4 elements per invocation, numbered across a 2D grid (large tensors
  // need more workgroups than one dimension holds).
  let i0 = (gid.x + gid.y * nwg_p.x * 64u) * 4u;
  for (var k = 0u; k < 4u; k++) {
    let i = i0 + k;
    if (i < pr.n) {
      g[pr.g_off + i] = select(0.0, g[pr.g_off + i], y[pr.y_off + i] > 0.0);
    }
  }
}
