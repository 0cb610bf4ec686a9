// Dense optical flow between two frames, coarse to fine, and the
// consistency check of a forward and a backward flow (src/engine/ops/flow.ts
// records the passes; src/engine/video/flow.ts puts them together).
//
// The method: the variational flow of Horn & Schunck with a total-variation
// (robust) smoothness term and a combined local-global data term (Bruhn,
// Weickert & Schnörr 2005), solved by warping (Brox et al. 2004). On each
// level of a pyramid of grayscale frames A (the first) and B (the second),
// for each warp around the current flow w = (u, v):
//   derive:  B and its gradient sampled at p + w(p) (bilinear), the
//            linearised brightness constancy Ix·du + Iy·dv + It = 0 with
//            Ix, Iy the mean of A's and warped B's central differences and
//            It = B(p + w) − A(p); its motion tensor J = [Ix², IxIy, IxIt,
//            Iy², IyIt] per pixel;
//   blur:    J smoothed by a 5-tap binomial filter [1 4 6 4 1]/16 along x,
//            then y (the "local" part: a window of about σ = 1 pixel);
//   then the increment dw minimises Σ dwᵀJ dw-terms + α Σ ψ(|∇(w + dw)|²)
//   with ψ'(s) = ε/√(s + ε²) lagged:
//   diffusivity: ψ' per pixel from the current w + dw (central differences);
//   sor:     a red-black successive over-relaxation sweep of the
//            Euler–Lagrange equations, each edge weighted by the mean ψ'
//            of its two pixels (ω = over-relaxation factor);
//   commit:  w += dw, dw = 0.
// Between levels, `upsample` doubles the coarse flow bilinearly (coarse
// pixel X covers fine pixels 2X and 2X + 1: fine x = 2X + 0.5).
//
// Images are dense [H][W] f32 planes, flows [2][H][W] (u: columns, then v:
// rows), frames the network's preprocessed [3][H][W] (B, G, R less the
// means; plane stride a_plane/b_plane). Every bilinear sample clamps its
// position to the image (edge pixels extend outward).

// check: with CODES, the output is a bit set of the tests that failed (0
// where c = 1; 1 outside the image, 2 forward–backward, 4 motion boundary,
// 8 photometric) instead of c.
override CODES: bool = false;

struct Params {
  // This level's size, and the other level's (down: the finer source;
  // upsample: the coarser source).
  w: u32, h: u32, sw: u32, sh: u32,
  // gray, check: frame A at a_off (planes a_plane apart); check: frame B.
  a_off: u32, a_plane: u32, b_off: u32, b_plane: u32,
  // sor: which colour of the checkerboard, (x + y) % 2; blur: 0 along x, 1 along y.
  parity: u32, dir: u32, _p0: u32, _p1: u32,
  // sor: smoothness weight α and over-relaxation ω; diffusivity: ε; check:
  // the photometric threshold (frame units).
  alpha: f32, omega: f32, eps: f32, tau: f32,
  // gray: luminance = k0·B + k1·G + k2·R + bias.
  k0: f32, k1: f32, k2: f32, bias: f32,
}

// The parameters sit at index 0, read at an index the driver cannot fold
// (num_workgroups.x >> 31 is 0 for any legal count): lavapipe otherwise
// specialises kernels on the uniforms that steer their loops (bench/NOTES.md,
// row 41).
@group(0) @binding(0) var<uniform> params: array<Params, 2>;
var<private> pr: Params;
@group(0) @binding(1) var<storage, read> frame_a: array<f32>;
@group(0) @binding(2) var<storage, read> frame_b: array<f32>;
@group(0) @binding(3) var<storage, read> img_a: array<f32>;
@group(0) @binding(4) var<storage, read> img_b: array<f32>;
@group(0) @binding(5) var<storage, read_write> img_out: array<f32>;
@group(0) @binding(6) var<storage, read> flow_a: array<f32>;
@group(0) @binding(7) var<storage, read> flow_b: array<f32>;
@group(0) @binding(8) var<storage, read> dflow_in: array<f32>;
@group(0) @binding(9) var<storage, read> tensor_in: array<f32>;
@group(0) @binding(10) var<storage, read> psi_in: array<f32>;
@group(0) @binding(11) var<storage, read_write> flow_out: array<f32>;
@group(0) @binding(12) var<storage, read_write> dflow: array<f32>;
@group(0) @binding(13) var<storage, read_write> tensor_out: array<f32>;

// The pixel of an invocation (x: columns, y: rows; workgroups beyond 65535
// rows continue in z), and whether it lies in the w×h image.
fn pixel(gid: vec3<u32>, nwg: vec3<u32>) -> vec2<u32> {
  return vec2<u32>(gid.x, gid.y + gid.z * nwg.y);
}

fn outside(q: vec2<u32>) -> bool {
  return q.x >= pr.w || q.y >= pr.h;
}

// The position of a bilinear sample in a w×h plane, clamped: the corner's
// index, the steps to the next column and row (0 at the last), the weights.
struct Tap {
  i: u32, dx: u32, dy: u32, fx: f32, fy: f32,
}

fn tap(x: f32, y: f32, w: u32, h: u32) -> Tap {
  let cx = clamp(x, 0.0, f32(w - 1u));
  let cy = clamp(y, 0.0, f32(h - 1u));
  let x0 = u32(floor(cx));
  let y0 = u32(floor(cy));
  return Tap(y0 * w + x0, select(0u, 1u, x0 + 1u < w), select(0u, w, y0 + 1u < h),
    cx - f32(x0), cy - f32(y0));
}

fn sample_b(t: Tap) -> f32 {
  let top = mix(img_b[t.i], img_b[t.i + t.dx], t.fx);
  let bot = mix(img_b[t.i + t.dy], img_b[t.i + t.dy + t.dx], t.fx);
  return mix(top, bot, t.fy);
}

// flow_a's plane `at` (0: u, w·h: v), sampled.
fn sample_flow_a(t: Tap, at: u32) -> f32 {
  let i = at + t.i;
  let top = mix(flow_a[i], flow_a[i + t.dx], t.fx);
  let bot = mix(flow_a[i + t.dy], flow_a[i + t.dy + t.dx], t.fx);
  return mix(top, bot, t.fy);
}

// frame_a's plane `at`, sampled.
fn sample_frame_a(t: Tap, at: u32) -> f32 {
  let i = at + t.i;
  let top = mix(frame_a[i], frame_a[i + t.dx], t.fx);
  let bot = mix(frame_a[i + t.dy], frame_a[i + t.dy + t.dx], t.fx);
  return mix(top, bot, t.fy);
}

// The luminance of frame A, one plane in 0..1.
@compute @workgroup_size(64, 1, 1)
fn gray(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  pr = params[nwg.x >> 31u];
  let q = pixel(gid, nwg);
  if (outside(q)) {
    return;
  }
  let i = q.y * pr.w + q.x;
  let a = pr.a_off + i;
  img_out[i] = pr.k0 * frame_a[a] + pr.k1 * frame_a[a + pr.a_plane] +
    pr.k2 * frame_a[a + 2u * pr.a_plane] + pr.bias;
}

// The next level of a pyramid: img_a (sw×sh) filtered by [1 3 3 1]/8 along
// each axis and decimated by 2 — coarse pixel X centred on fine x = 2X + 0.5,
// from fine 2X − 1 … 2X + 2 (the edge pixels repeated).
@compute @workgroup_size(64, 1, 1)
fn down(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  pr = params[nwg.x >> 31u];
  let q = pixel(gid, nwg);
  if (outside(q)) {
    return;
  }
  let k = vec4<f32>(1.0, 3.0, 3.0, 1.0) / 8.0;
  // The four columns, and the four rows' offsets.
  let xs = vec4<u32>(max(2u * q.x, 1u) - 1u, min(2u * q.x, pr.sw - 1u),
    min(2u * q.x + 1u, pr.sw - 1u), min(2u * q.x + 2u, pr.sw - 1u));
  let ys = vec4<u32>(max(2u * q.y, 1u) - 1u, min(2u * q.y, pr.sh - 1u),
    min(2u * q.y + 1u, pr.sh - 1u), min(2u * q.y + 2u, pr.sh - 1u)) * pr.sw;
  var s = 0.0;
  for (var r = 0u; r < 4u; r++) {
    let row = vec4<f32>(img_a[ys[r] + xs.x], img_a[ys[r] + xs.y], img_a[ys[r] + xs.z],
      img_a[ys[r] + xs.w]);
    s += k[r] * dot(k, row);
  }
  img_out[q.y * pr.w + q.x] = s;
}

// The coarse flow flow_a (sw×sh) doubled onto this level: bilinear at
// ((x − 0.5)/2, (y − 0.5)/2), times 2.
@compute @workgroup_size(64, 1, 1)
fn upsample(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  pr = params[nwg.x >> 31u];
  let q = pixel(gid, nwg);
  if (outside(q)) {
    return;
  }
  let t = tap((f32(q.x) - 0.5) * 0.5, (f32(q.y) - 0.5) * 0.5, pr.sw, pr.sh);
  let i = q.y * pr.w + q.x;
  flow_out[i] = 2.0 * sample_flow_a(t, 0u);
  flow_out[pr.w * pr.h + i] = 2.0 * sample_flow_a(t, pr.sw * pr.sh);
}

// The motion tensor of A = img_a and B = img_b warped by the flow flow_a.
@compute @workgroup_size(64, 1, 1)
fn derive(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  pr = params[nwg.x >> 31u];
  let q = pixel(gid, nwg);
  if (outside(q)) {
    return;
  }
  let hw = pr.w * pr.h;
  let i = q.y * pr.w + q.x;
  let sx = f32(q.x) + flow_a[i];
  let sy = f32(q.y) + flow_a[hw + i];
  let bw = sample_b(tap(sx, sy, pr.w, pr.h));
  let bx = 0.5 * (sample_b(tap(sx + 1.0, sy, pr.w, pr.h)) - sample_b(tap(sx - 1.0, sy, pr.w, pr.h)));
  let by = 0.5 * (sample_b(tap(sx, sy + 1.0, pr.w, pr.h)) - sample_b(tap(sx, sy - 1.0, pr.w, pr.h)));
  let row = q.y * pr.w;
  let ax = 0.5 * (img_a[row + min(q.x + 1u, pr.w - 1u)] - img_a[row + max(q.x, 1u) - 1u]);
  let ay = 0.5 * (img_a[min(q.y + 1u, pr.h - 1u) * pr.w + q.x] - img_a[(max(q.y, 1u) - 1u) * pr.w + q.x]);
  let ix = 0.5 * (ax + bx);
  let iy = 0.5 * (ay + by);
  let it = bw - img_a[i];
  tensor_out[i] = ix * ix;
  tensor_out[hw + i] = ix * iy;
  tensor_out[2u * hw + i] = ix * it;
  tensor_out[3u * hw + i] = iy * iy;
  tensor_out[4u * hw + i] = iy * it;
}

// The 5 planes of tensor_in filtered by [1 4 6 4 1]/16 along x (dir 0) or y
// (dir 1), the image's edge pixels repeated.
@compute @workgroup_size(64, 1, 1)
fn blur(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  pr = params[nwg.x >> 31u];
  let q = pixel(gid, nwg);
  if (outside(q)) {
    return;
  }
  let hw = pr.w * pr.h;
  var n = pr.w;
  var at = q.x;
  var step = 1u;
  if (pr.dir == 1u) {
    n = pr.h;
    at = q.y;
    step = pr.w;
  }
  // The pixel's index less its position along the filtered axis.
  let base = q.y * pr.w + q.x - at * step;
  let i0 = base + (max(at, 2u) - 2u) * step;
  let i1 = base + (max(at, 1u) - 1u) * step;
  let i2 = base + at * step;
  let i3 = base + min(at + 1u, n - 1u) * step;
  let i4 = base + min(at + 2u, n - 1u) * step;
  for (var k = 0u; k < 5u; k++) {
    let o = k * hw;
    tensor_out[o + i2] = (tensor_in[o + i0] + tensor_in[o + i4] +
      4.0 * (tensor_in[o + i1] + tensor_in[o + i3]) + 6.0 * tensor_in[o + i2]) / 16.0;
  }
}

// The lagged diffusivity ψ' = ε/√(|∇u|² + |∇v|² + ε²) of the flow flow_a +
// dflow_in (central differences, one-sided at the edges), into img_out.
@compute @workgroup_size(64, 1, 1)
fn diffusivity(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  pr = params[nwg.x >> 31u];
  let q = pixel(gid, nwg);
  if (outside(q)) {
    return;
  }
  let hw = pr.w * pr.h;
  let i = q.y * pr.w + q.x;
  let l = i - select(0u, 1u, q.x > 0u);
  let r = i + select(0u, 1u, q.x + 1u < pr.w);
  let t = i - select(0u, pr.w, q.y > 0u);
  let b = i + select(0u, pr.w, q.y + 1u < pr.h);
  let ux = 0.5 * (flow_a[r] + dflow_in[r] - flow_a[l] - dflow_in[l]);
  let uy = 0.5 * (flow_a[b] + dflow_in[b] - flow_a[t] - dflow_in[t]);
  let vx = 0.5 * (flow_a[hw + r] + dflow_in[hw + r] - flow_a[hw + l] - dflow_in[hw + l]);
  let vy = 0.5 * (flow_a[hw + b] + dflow_in[hw + b] - flow_a[hw + t] - dflow_in[hw + t]);
  img_out[i] = pr.eps * inverseSqrt(ux * ux + uy * uy + vx * vx + vy * vy + pr.eps * pr.eps);
}

// One neighbour's share of a sor update: its edge weight, and the weighted
// flow u + du, v + dv there.
fn neighbour(i: u32, n: u32, hw: u32, acc: vec3<f32>) -> vec3<f32> {
  let wn = 0.5 * (psi_in[i] + psi_in[n]);
  return acc + wn * vec3<f32>(1.0, flow_a[n] + dflow[n], flow_a[hw + n] + dflow[hw + n]);
}

// One half sweep of red-black SOR for the increment dflow, over the pixels
// with (x + y) % 2 = parity (invocation x → column 2x or 2x + 1). The pixel's
// 2×2 system: (J11 + αΣw) du + J12 dv = α(Σ w·u_n − Σw·u) − J13, and
// likewise for dv, with u_n the neighbours' u + du.
@compute @workgroup_size(64, 1, 1)
fn sor(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  pr = params[nwg.x >> 31u];
  let y = gid.y + gid.z * nwg.y;
  let x = 2u * gid.x + ((y + pr.parity) & 1u);
  if (x >= pr.w || y >= pr.h) {
    return;
  }
  let hw = pr.w * pr.h;
  let i = y * pr.w + x;
  // (Σw, Σw·(u + du), Σw·(v + dv)) over the neighbours inside the image.
  var s = vec3<f32>(0.0);
  if (x > 0u) {
    s = neighbour(i, i - 1u, hw, s);
  }
  if (x + 1u < pr.w) {
    s = neighbour(i, i + 1u, hw, s);
  }
  if (y > 0u) {
    s = neighbour(i, i - pr.w, hw, s);
  }
  if (y + 1u < pr.h) {
    s = neighbour(i, i + pr.w, hw, s);
  }
  let a = pr.alpha;
  let ru = a * (s.y - s.x * flow_a[i]) - tensor_in[2u * hw + i];
  let rv = a * (s.z - s.x * flow_a[hw + i]) - tensor_in[4u * hw + i];
  let m11 = tensor_in[i] + a * s.x;
  let m12 = tensor_in[hw + i];
  let m22 = tensor_in[3u * hw + i] + a * s.x;
  let det = m11 * m22 - m12 * m12;
  if (det > 0.0) {
    let du = (m22 * ru - m12 * rv) / det;
    let dv = (m11 * rv - m12 * ru) / det;
    dflow[i] = mix(dflow[i], du, pr.omega);
    dflow[hw + i] = mix(dflow[hw + i], dv, pr.omega);
  }
}

// flow += dflow; dflow = 0.
@compute @workgroup_size(64, 1, 1)
fn commit(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  pr = params[nwg.x >> 31u];
  let q = pixel(gid, nwg);
  if (outside(q)) {
    return;
  }
  let i = q.y * pr.w + q.x;
  let j = pr.w * pr.h + i;
  flow_out[i] += dflow[i];
  flow_out[j] += dflow[j];
  dflow[i] = 0.0;
  dflow[j] = 0.0;
}

// The consistency weights c of frame B (the later frame, t), from the
// forward flow flow_a (t−1 → t, on frame A's pixels) and the backward flow
// flow_b (t → t−1, on B's): c = 0 where
//   - p + ŵ(p) lies outside the image (more than half a pixel out);
//   - forward and backward disagree (Ruder et al. 2016): with w̃ the forward
//     flow at p + ŵ(p), |w̃ + ŵ|² > 0.01(|w̃|² + |ŵ|²) + 0.5;
//   - p is on a motion boundary: |∇û|² + |∇v̂|² > 0.01|ŵ|² + 0.002
//     (central differences of the backward flow);
//   - photometric: a channel of frame A at p + ŵ(p) differs from frame B's
//     at p by more than tau (what the flow check misses where the flow is
//     smooth but wrong, e.g. over a flat moving region);
// c = 1 elsewhere. Written to img_out ([H][W]).
@compute @workgroup_size(64, 1, 1)
fn check(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  pr = params[nwg.x >> 31u];
  let q = pixel(gid, nwg);
  if (outside(q)) {
    return;
  }
  let hw = pr.w * pr.h;
  let i = q.y * pr.w + q.x;
  let bw = vec2<f32>(flow_b[i], flow_b[hw + i]);
  let sx = f32(q.x) + bw.x;
  let sy = f32(q.y) + bw.y;
  var code = 0u;
  if (!(sx >= -0.5 && sx <= f32(pr.w) - 0.5 && sy >= -0.5 && sy <= f32(pr.h) - 0.5)) {
    code |= 1u;
  }
  let t = tap(sx, sy, pr.w, pr.h);
  let fw = vec2<f32>(sample_flow_a(t, 0u), sample_flow_a(t, hw));
  let sum = fw + bw;
  if (dot(sum, sum) > 0.01 * (dot(fw, fw) + dot(bw, bw)) + 0.5) {
    code |= 2u;
  }
  let l = i - select(0u, 1u, q.x > 0u);
  let r = i + select(0u, 1u, q.x + 1u < pr.w);
  let up = i - select(0u, pr.w, q.y > 0u);
  let dn = i + select(0u, pr.w, q.y + 1u < pr.h);
  // Central differences (halved steps: one-sided ones at the edges).
  let gx = 0.5 * (vec2<f32>(flow_b[r], flow_b[hw + r]) - vec2<f32>(flow_b[l], flow_b[hw + l]));
  let gy = 0.5 * (vec2<f32>(flow_b[dn], flow_b[hw + dn]) - vec2<f32>(flow_b[up], flow_b[hw + up]));
  if (dot(gx, gx) + dot(gy, gy) > 0.01 * dot(bw, bw) + 0.002) {
    code |= 4u;
  }
  var diff = 0.0;
  for (var ch = 0u; ch < 3u; ch++) {
    let a = sample_frame_a(t, pr.a_off + ch * pr.a_plane);
    diff = max(diff, abs(a - frame_b[pr.b_off + ch * pr.b_plane + i]));
  }
  if (diff > pr.tau) {
    code |= 8u;
  }
  if (CODES) {
    img_out[i] = f32(code);
  } else {
    img_out[i] = select(0.0, 1.0, code == 0u);
  }
}
