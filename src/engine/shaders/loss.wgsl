// The content loss with its gradient, where it has a launch of its own (the
// total-variation loss is fused into the image gradient's launch,
// conv_s2_backward.wgsl; the content loss, where it can be, into the 1×1
// launch writing its layer's gradient, pointwise.wgsl). The partial sums of
// every loss term are added up on the CPU.
//
// content: L = w·Σ(F−P)²,   dF += 2w·(F−P); with MASK, dF is then
//          multiplied by (F > 0): F is a ReLU output, so that is the ReLU
//          backward, fused into the last write of the layer's gradient.
// tv:      the total-variation loss of the pairs of neighbours (one pixel
//          and the next below, or right) whose first pixel lies in a
//          rectangle of one tile of the image: L = w·Σ(x[y+1]−x[y])² +
//          w·Σ(x[x+1]−x[x])², dx += its gradient — for images split into
//          tiles, where each tile owns the pairs that start in its part
//          (a whole image has its TV term fused into conv_s2_backward.wgsl).

override MASK: bool = false;

struct Params {
  n: u32, a_off: u32, g_off: u32, part_off: u32,
  c: u32, h: u32, w: u32, plane: u32,
  weight: f32, _p1: f32, _p2: f32, _p3: f32,
  // tv: the rectangle of first pixels, rows [y0, y1), columns [x0, x1).
  y0: u32, y1: u32, x0: u32, x1: u32,
}

// The parameters sit at index 0, read at an index the driver cannot fold
// (num_workgroups.x >> 31 is 0 for any legal count): lavapipe otherwise
// specialises kernels on the uniforms that steer their loops (bench/NOTES.md,
// row 41).
@group(0) @binding(0) var<uniform> params: array<Params, 2>;
var<private> p: Params;
@group(0) @binding(4) var<storage, read_write> loss_part: array<f32>;

// Writes the workgroup's weighted partial sum (workgroup_sum.wgsl).
fn finish(lid: u32, wid: u32, v: f32) {
  let total = workgroup_sum(lid, v);
  if (lid == 0u) {
    loss_part[p.part_off + wid] = p.weight * total;
  }
}

// F (at a_off), target P and grad (at g_off) as vec4s, [C][H][W] with
// channel planes `plane` elements apart: plane, a_off and g_off are
// multiples of 4 (a vec4 access costs lavapipe about what 1.6 scalar ones
// do), n = C·plane. The padding after each plane's H·W pixels is left out of
// the sum and its gradient left as it is.
@group(0) @binding(5) var<storage, read> f4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read> p4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> g4: array<vec4<f32>>;

@compute @workgroup_size(RW, 1, 1)
fn content(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  p = params[nwg.x >> 31u];
  let a0 = p.a_off / 4u;
  let g0 = p.g_off / 4u;
  let q4 = p.plane / 4u;
  let np = p.h * p.w;
  var sq = 0.0;
  // Plane by plane (no integer division per element: lavapipe divides lane
  // by lane), the last one up to n.
  let n4 = p.n / 4u;
  for (var base = 0u; base < n4; base += q4) {
    for (var q = gid.x; q < min(q4, n4 - base); q += nwg.x * RW) {
      let e = base + q;
      let f = f4[a0 + e];
      let i = q * 4u;
      let valid = vec4<u32>(i, i + 1u, i + 2u, i + 3u) < vec4<u32>(np);
      let d = select(vec4<f32>(0.0), f - p4[e], valid);
      var g = g4[g0 + e] + 2.0 * p.weight * d;
      if (MASK) {
        g = select(vec4<f32>(0.0), g, f > vec4<f32>(0.0));
      }
      g4[g0 + e] = g;
      sq += dot(d, d);
    }
  }
  finish(lid.x, wid.x, sq);
}

// The tile x [C][H][W] (dense, at a_off) and its gradient (g_off, added
// into); one pixel per invocation, grid-stride. Each pixel adds the gradient
// of the owned pairs it belongs to, and, when it is a pair's first pixel,
// that pair's square to the sum (so no two invocations write one element).
@group(0) @binding(1) var<storage, read> tv_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> tv_g: array<f32>;

fn owns(y: u32, x: u32) -> bool {
  return y >= p.y0 && y < p.y1 && x >= p.x0 && x < p.x1;
}

@compute @workgroup_size(RW, 1, 1)
fn tv(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  p = params[nwg.x >> 31u];
  let hw = p.h * p.w;
  var sq = 0.0;
  // Each workgroup a band of rows, its lanes along them: no integer division
  // per element (lavapipe divides lane by lane).
  let per = (p.h + nwg.x - 1u) / nwg.x;
  let ya = wid.x * per;
  let yb = min(ya + per, p.h);
  for (var ch = 0u; ch < p.c; ch++) {
  for (var y = ya; y < yb; y++) {
  for (var x = lid.x; x < p.w; x += RW) {
    let e = ch * hw + y * p.w + x;
    let v = tv_x[p.a_off + e];
    var g = 0.0;
    // The pairs below and to the right, whose first pixel this is.
    if (owns(y, x)) {
      if (y + 1u < p.h) {
        let d = tv_x[p.a_off + e + p.w] - v;
        g -= d;
        sq += d * d;
      }
      if (x + 1u < p.w) {
        let d = tv_x[p.a_off + e + 1u] - v;
        g -= d;
        sq += d * d;
      }
    }
    // The pairs above and to the left, whose second pixel this is.
    if (y > 0u && owns(y - 1u, x)) {
      g += v - tv_x[p.a_off + e - p.w];
    }
    if (x > 0u && owns(y, x - 1u)) {
      g += v - tv_x[p.a_off + e - 1u];
    }
    tv_g[p.g_off + e] += 2.0 * p.weight * g;
  }
  }
  }
  finish(lid.x, wid.x, sq);
}
