// ReLU backward, in place: g = g·(y > 0), where y is the ReLU's output.
// Applied once to a layer's output gradient after every contribution to it
// has been added, so the convolutions that consume it need no mask.

struct Params {
  n: u32, g_off: u32, y_off: u32, _pad: u32,
}

@group(0) @binding(0) var<uniform> pr: Params;
@group(0) @binding(1) var<storage, read_write> g: array<f32>;
@group(0) @binding(2) var<storage, read> y: array<f32>;

@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>) {
  // 4 elements per invocation.
  let i0 = gid.x * 4u;
  for (var k = 0u; k < 4u; k++) {
    let i = i0 + k;
    if (i < pr.n) {
      g[pr.g_off + i] = select(0.0, g[pr.g_off + i], y[pr.y_off + i] > 0.0);
    }
  }
}
