// Shared by pointwise.wgsl and conv3x3.wgsl (prepended by src/engine/ops/conv.ts):
// the options every convolution launch has and the bias (binding 3); for
// conv3x3.wgsl also x, out and the mask as scalars (bindings 1, 4, 5) and
// the fused scalar epilogue (pointwise.wgsl has its own on vec4 views). Each
// including shader declares `pr: Params` with x_off, out_off and
// mask_out_off.

override HAS_BIAS: bool = true;
override RELU: bool = true;
override ACCUMULATE: bool = false; // out += result
override MASK_OUT: bool = false;   // result multiplied by (mask_out > 0)

@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> mask_out: array<f32>;

fn load_x(i: u32) -> f32 {
  return x[pr.x_off + i];
}

// Writes one output value at element o (relative to out_off): + the old value
// (ACCUMULATE), ReLU (RELU), times the mask (MASK_OUT).
fn store(o: u32, v: f32) {
  var r = v;
  if (ACCUMULATE) {
    r += out[pr.out_off + o];
  }
  if (RELU) {
    r = max(r, 0.0);
  }
  if (MASK_OUT) {
    r = select(0.0, r, mask_out[pr.mask_out_off + o] > 0.0);
  }
  out[pr.out_off + o] = r;
}
