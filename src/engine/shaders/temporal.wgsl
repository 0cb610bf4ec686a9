// The short-term temporal loss of a video frame (Ruder, Dosovitskiy & Brox
// 2016) with its gradient, on the preprocessed image x [3][H][W]:
//   L = s·Σ_p c[p]·Σ_ch (x[ch][p] − ω[ch][p])²,   dx += 2s·c·(x − ω)
// where ω is the previous frame's output warped onto this frame, c the
// per-pixel consistency weights (shared by the channels) and s = w_temp / D
// (the caller's weight over the image's pixel count). Over the rows of one
// band of the image: x, its gradient and ω hold the band's rows
// [ch][rows][W] (each with its own plane stride), c the same rows of the
// whole-image map (c_off points at the band's first row). Pixels with c = 0
// add nothing, whatever x and ω hold there. The partial sums of the
// workgroups go to `parts` and are added up on the CPU
// (workgroup_sum.wgsl, prepended by the wrapper).

struct Params {
  n: u32, x_off: u32, x_plane: u32, g_off: u32,
  g_plane: u32, o_off: u32, o_plane: u32, c_off: u32,
  part_off: u32, weight: f32, _p0: u32, _p1: u32,
}

// The parameters sit at index 0, read at an index the driver cannot fold
// (num_workgroups.x >> 31 is 0 for any legal count): lavapipe otherwise
// specialises kernels on the uniforms that steer their loops (bench/NOTES.md,
// row 41).
@group(0) @binding(0) var<uniform> params: array<Params, 2>;
var<private> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> omega: array<f32>;
@group(0) @binding(3) var<storage, read> cw: array<f32>;
@group(0) @binding(4) var<storage, read_write> grad: array<f32>;
@group(0) @binding(5) var<storage, read_write> parts: array<f32>;

// A fixed number of workgroups, each pixel of the band (n = rows·W) by one
// invocation, grid-stride, all three channels.
@compute @workgroup_size(RW, 1, 1)
fn temporal(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  p = params[nwg.x >> 31u];
  var sq = 0.0;
  for (var i = gid.x; i < p.n; i += nwg.x * RW) {
    let c = cw[p.c_off + i];
    if (c > 0.0) {
      for (var ch = 0u; ch < 3u; ch++) {
        let d = x[p.x_off + ch * p.x_plane + i] - omega[p.o_off + ch * p.o_plane + i];
        let g = p.g_off + ch * p.g_plane + i;
        grad[g] = grad[g] + 2.0 * p.weight * c * d;
        sq += c * d * d;
      }
    }
  }
  let total = workgroup_sum(lid.x, sq);
  if (lid.x == 0u) {
    parts[p.part_off + wid.x] = p.weight * total;
  }
}
