// Gram matrix G = F·Fᵀ / N of features F [C][P] (N = C·P), split over the
// pixels for parallelism: `partial` computes, for each pixel chunk s, the
// upper-triangle blocks of F_s·F_sᵀ (mirrored on write); `reduce` sums the
// chunks, scales, and, with LOSS, forms the style loss w·Σ(G−A)² (per-workgroup
// partial sums) and dG = (4w/N)·(G−A), the matrix the backward multiplies F by.

override TILE_REGS: u32 = 4u; // rows and columns per invocation (<= 8)
override WG: u32 = 8u;        // invocations per side of a block
override LOSS: bool = false;

struct Params {
  c: u32, npix: u32, chunk: u32, blocks: u32,
  f_off: u32, g_off: u32, part_off: u32, _pad: u32,
  inv_n: f32, weight: f32, coef: f32, _pad2: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> f: array<f32>;
@group(0) @binding(2) var<storage, read_write> part: array<f32>;

const MAXT: u32 = 8u;

@compute @workgroup_size(WG, WG, 1)
fn partial(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
) {
  // Block pair (bi <= bj) from the linear index wid.x.
  var k = wid.x;
  var bi = 0u;
  while (k >= p.blocks - bi) {
    k -= p.blocks - bi;
    bi++;
  }
  let bj = bi + k;
  let side = WG * TILE_REGS;
  let i0 = bi * side + lid.y * TILE_REGS;
  let j0 = bj * side + lid.x * TILE_REGS;
  if (i0 >= p.c || j0 >= p.c) {
    return;
  }
  var ri: array<u32, MAXT>;
  var rj: array<u32, MAXT>;
  for (var t = 0u; t < TILE_REGS; t++) {
    ri[t] = p.f_off + min(i0 + t, p.c - 1u) * p.npix;
    rj[t] = p.f_off + min(j0 + t, p.c - 1u) * p.npix;
  }
  let s = wid.y;
  let q0 = s * p.chunk;
  let q1 = min(q0 + p.chunk, p.npix);
  var acc: array<array<f32, MAXT>, MAXT>;
  for (var q = q0; q < q1; q++) {
    var a: array<f32, MAXT>;
    var b: array<f32, MAXT>;
    for (var t = 0u; t < TILE_REGS; t++) {
      a[t] = f[ri[t] + q];
      b[t] = f[rj[t] + q];
    }
    for (var u = 0u; u < TILE_REGS; u++) {
      for (var v = 0u; v < TILE_REGS; v++) {
        acc[u][v] = fma(a[u], b[v], acc[u][v]);
      }
    }
  }
  let base = s * p.c * p.c;
  for (var u = 0u; u < TILE_REGS; u++) {
    let i = i0 + u;
    for (var v = 0u; v < TILE_REGS; v++) {
      let j = j0 + v;
      if (i < p.c && j < p.c) {
        part[base + i * p.c + j] = acc[u][v];
        if (bi != bj) {
          part[base + j * p.c + i] = acc[u][v];
        }
      }
    }
  }
}

@group(0) @binding(3) var<storage, read> target_gram: array<f32>;
@group(0) @binding(4) var<storage, read_write> gram: array<f32>;
@group(0) @binding(5) var<storage, read_write> dgram: array<f32>;
@group(0) @binding(6) var<storage, read_write> loss_part: array<f32>;

const RW: u32 = 256u;
var<workgroup> red: array<f32, RW>;

@compute @workgroup_size(RW, 1, 1)
fn reduce(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  let cc = p.c * p.c;
  let splits = (p.npix + p.chunk - 1u) / p.chunk;
  var sq = 0.0;
  for (var e = gid.x; e < cc; e += nwg.x * RW) {
    var g = 0.0;
    for (var s = 0u; s < splits; s++) {
      g += part[s * cc + e];
    }
    g *= p.inv_n;
    gram[p.g_off + e] = g;
    if (LOSS) {
      let d = g - target_gram[e];
      dgram[e] = p.coef * d;
      sq = fma(d, d, sq);
    }
  }
  if (LOSS) {
    red[lid.x] = sq;
    workgroupBarrier();
    for (var h = RW / 2u; h > 0u; h /= 2u) {
      if (lid.x < h) {
        red[lid.x] += red[lid.x + h];
      }
      workgroupBarrier();
    }
    if (lid.x == 0u) {
      loss_part[p.part_off + wid.x] = p.weight * red[0];
    }
  }
}
