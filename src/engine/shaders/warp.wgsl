// Backward warping of a [C][H][W] image by a flow field [2][H][W] (u plane,
// then v), bilinear, or with CUBIC bicubic (Keys' kernel, a = −0.5, as
// Pillow's; 4×4 taps, each clamped to the image): out[c][y][x] = src[c]
// sampled at (x + u, y + v), for
// the output rows y0 … y0 + rows − 1 (a band of a large image; every other
// map — src, the flow, the mask and `valid` — covers the whole image).
//
// Border rule: the sample position is clamped to [0, W−1] × [0, H−1] before
// the interpolation (edge pixels extend outward), and a sample is
// *inside* when −0.5 ≤ x + u ≤ W − 0.5 and −0.5 ≤ y + v ≤ H − 0.5 (within
// the image's pixel area). With VALID, valid[y][x] gets 1 for a sample
// inside, 0 for one outside. With BLEND, the output is
//   m·warped + (1 − m)·fallback,   m = mask[y][x] if inside, 0 outside
// (mask: the consistency weights c ∈ [0, 1]): how a frame's first iterate
// takes the previous output where it is trusted and the content elsewhere.
// A NaN flow gives an unspecified sample.

override VALID: bool = false;
override BLEND: bool = false;
override CUBIC: bool = false;

struct Params {
  w: u32, h: u32, c: u32, y0: u32,
  rows: u32, src_off: u32, src_plane: u32, flow_off: u32,
  out_off: u32, out_plane: u32, valid_off: u32, mask_off: u32,
  fb_off: u32, fb_plane: u32, _p0: u32, _p1: u32,
}

// The parameters sit at index 0, read at an index the driver cannot fold
// (num_workgroups.x >> 31 is 0 for any legal count): lavapipe otherwise
// specialises kernels on the uniforms that steer their loops (bench/NOTES.md,
// row 41).
@group(0) @binding(0) var<uniform> params: array<Params, 2>;
var<private> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> flow: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> valid: array<f32>;
@group(0) @binding(5) var<storage, read> mask: array<f32>;
@group(0) @binding(6) var<storage, read> fallback: array<f32>;

// Keys' cubic convolution weights (a = −0.5) of the taps at −1, 0, 1, 2 for a
// sample at fraction t ∈ [0, 1) past tap 0.
fn keys(t: f32) -> vec4<f32> {
  let t2 = t * t;
  let t3 = t2 * t;
  return vec4<f32>(
    -0.5 * t3 + t2 - 0.5 * t,
    1.5 * t3 - 2.5 * t2 + 1.0,
    -1.5 * t3 + 2.0 * t2 + 0.5 * t,
    0.5 * t3 - 0.5 * t2,
  );
}

// The bicubic sample of plane `s` at tap (x0, y0) plus fraction (fx, fy), taps clamped.
fn cubic(s: u32, x0: u32, y0: u32, fx: f32, fy: f32) -> f32 {
  let wx = keys(fx);
  let wy = keys(fy);
  var v = 0.0;
  for (var j = 0u; j < 4u; j++) {
    let yy = u32(clamp(i32(y0) + i32(j) - 1, 0, i32(p.h) - 1));
    var row = 0.0;
    for (var k = 0u; k < 4u; k++) {
      let xx = u32(clamp(i32(x0) + i32(k) - 1, 0, i32(p.w) - 1));
      row += wx[k] * src[s + yy * p.w + xx];
    }
    v += wy[j] * row;
  }
  return v;
}

// One output pixel per invocation (x: columns, y: band rows; workgroups
// beyond 65535 rows continue in z), every channel in turn.
@compute @workgroup_size(64, 1, 1)
fn warp(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  p = params[nwg.x >> 31u];
  let x = gid.x;
  let r = gid.y + gid.z * nwg.y;
  if (x >= p.w || r >= p.rows) {
    return;
  }
  let y = p.y0 + r;
  let hw = p.w * p.h;
  let i = y * p.w + x;
  let sx = f32(x) + flow[p.flow_off + i];
  let sy = f32(y) + flow[p.flow_off + hw + i];
  let wf = f32(p.w);
  let hf = f32(p.h);
  let inside = sx >= -0.5 && sx <= wf - 0.5 && sy >= -0.5 && sy <= hf - 0.5;
  let cx = clamp(sx, 0.0, wf - 1.0);
  let cy = clamp(sy, 0.0, hf - 1.0);
  let x0 = u32(floor(cx));
  let y0 = u32(floor(cy));
  let x1 = min(x0 + 1u, p.w - 1u);
  let y1 = min(y0 + 1u, p.h - 1u);
  let fx = cx - f32(x0);
  let fy = cy - f32(y0);
  var m = 1.0;
  if (BLEND) {
    m = select(0.0, mask[p.mask_off + i], inside);
  }
  if (VALID) {
    valid[p.valid_off + i] = select(0.0, 1.0, inside);
  }
  let o = r * p.w + x;
  for (var ch = 0u; ch < p.c; ch++) {
    let s = p.src_off + ch * p.src_plane;
    var v: f32;
    if (CUBIC) {
      v = cubic(s, x0, y0, fx, fy);
    } else {
      let top = mix(src[s + y0 * p.w + x0], src[s + y0 * p.w + x1], fx);
      let bot = mix(src[s + y1 * p.w + x0], src[s + y1 * p.w + x1], fx);
      v = mix(top, bot, fy);
    }
    if (BLEND) {
      v = m * v + (1.0 - m) * fallback[p.fb_off + ch * p.fb_plane + o];
    }
    out[p.out_off + ch * p.out_plane + o] = v;
  }
}
