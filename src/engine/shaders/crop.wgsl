// Rectangles of [C][H][W] tensors (channel planes `plane` elements apart,
// rows `width` elements apart) moved between two tensors: what splitting an
// image into tiles needs. `rect` copies a rows×cols window of each of C
// channels of src into dst; with ADD it adds into dst instead.
//   crop (forward):   dst[c][y][x]  = src[c][y0 + y][x0 + x]
//   crop (backward):  dG[c][y0 + y][x0 + x] += dTile[c][y][x]
// — the same launch with the window's corner in src (forward) or in dst
// (backward, ADD): the adjoint of a crop adds the tile's gradient back where
// the tile came from. Offsets (the window's corner included) are in elements.

override ADD: bool = false;

struct Params {
  c: u32, rows: u32, cols: u32, _p0: u32,
  src_off: u32, src_plane: u32, src_w: u32, _p1: u32,
  dst_off: u32, dst_plane: u32, dst_w: u32, _p2: u32,
}

// The parameters sit at index 0, read at an index the driver cannot fold
// (num_workgroups.x >> 31 is 0 for any legal count): lavapipe otherwise
// specialises kernels on the uniforms that steer their loops (bench/NOTES.md,
// row 41).
@group(0) @binding(0) var<uniform> params: array<Params, 2>;
var<private> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

// One column of one row per invocation (x: columns, y: rows; workgroups
// beyond 65535 rows continue in z), every channel in turn: no integer
// division, which lavapipe does lane by lane.
@compute @workgroup_size(64, 1, 1)
fn rect(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  p = params[nwg.x >> 31u];
  let col = gid.x;
  let r = gid.y + gid.z * nwg.y;
  if (col >= p.cols || r >= p.rows) {
    return;
  }
  var s = p.src_off + r * p.src_w + col;
  var d = p.dst_off + r * p.dst_w + col;
  for (var ch = 0u; ch < p.c; ch++) {
    if (ADD) {
      dst[d] = dst[d] + src[s];
    } else {
      dst[d] = src[s];
    }
    s += p.src_plane;
    d += p.dst_plane;
  }
}
