// Gram matrix G = F·Fᵀ / N of features F [C][P] (N = C·P; rows `stride` ≥ P
// elements apart) in two passes.
// `partial`: each invocation owns one T×T tile of the upper block triangle and
// one chunk of pixels (two launches: D = 0 the tiles off the diagonal, D = 1
// the diagonal ones, which load T rows and sum T(T+1)/2 products instead of
// 2T and T²); it streams its rows as aligned vec4s with a sliding
// window (one new vec4 per row per 4 pixels, realigned by the row's address
// mod 4, so F may start at any element offset and P may be odd).
// `reduce`: sums the chunks (4×4 blocks of vec4s), mirrors the triangle,
// scales by 1/N and, with LOSS, forms the style loss w·Σ(G−A)² (per-workgroup
// partial sums) and dG = (4w/N)·(G−A), the matrix the backward multiplies F
// by; WRITE_G = false leaves G itself out.
// Template parameters: T (tile side; C % T == 0 and T % 4 == 0), WG, and for
// `partial` D, S = stride mod 4 and O = (F's element offset) mod 4, and TEX:
// 1 (S = O = 0) fetches F's vec4s from its copy in a texture (binding 10, a
// FeatureTexture of src/engine/ops/context.ts: vec4 t of the buffer is texel
// (t mod 2^tex_shift, t >> tex_shift)), which lavapipe does far faster than
// it loads storage (bench/NOTES.md, rows 49–50); the last 1–3 pixels of an
// odd tail still come from the buffer. W: 1 weighs each pixel p by w[w_off + p]
// (bindings 12, 13; w_off a multiple of 4): G = Σ_p w_p·F_p·F_pᵀ / N, the
// guided Gram of spatial control (src/engine/loss/guided_style.ts).
// Runtime: chunk (a multiple of 4).
// shift4() comes from shift4.wgsl, workgroup_sum() from workgroup_sum.wgsl.

override LOSS: bool = false;

struct Params {
  c: u32, np: u32, chunk: u32, nb: u32,
  ntiles: u32, nchunks: u32, f_off: u32, g_off: u32,
  part_off: u32, stride: u32, tex_shift: u32, w_off: u32,
  inv_n: f32, weight: f32, coef: f32, _p3: f32,
}

// The parameters sit at index 0, read at an index the driver cannot fold
// (num_workgroups.x >> 31 is 0 for any legal count): lavapipe otherwise
// specialises kernels on the uniforms that steer their loops (bench/NOTES.md,
// row 41).
@group(0) @binding(0) var<uniform> params: array<Params, 2>;
var<private> pr: Params;
@group(0) @binding(1) var<storage, read> fv: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> fs: array<f32>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;
//#if TEX
@group(0) @binding(10) var ftex: texture_2d<f32>;
//#end
//#if W
@group(0) @binding(12) var<storage, read> wv: array<vec4<f32>>;
@group(0) @binding(13) var<storage, read> ws: array<f32>;
//#end

@compute @workgroup_size(${WG})
fn partial(
  @builtin(global_invocation_id) gid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  pr = params[nwg.x >> 31u];
  // One (tile, chunk) pair per invocation, linearly, so no lane idles when
  // the tiles do not fill a workgroup (64 channels: 36 tiles). D = 1: the nb
  // diagonal tiles, D = 0: the nb(nb−1)/2 tiles above them.
//#if D
  let nt = pr.nb;
//#end
//#if 1 - D
  let nt = pr.nb * (pr.nb - 1u) / 2u;
//#end
  let total = nt * pr.nchunks;
  let g = gid.y * nwg.x * ${WG}u + gid.x;
  let gg = min(g, total - 1u);
  let t = gg % nt;
  let chunk = gg / nt;
//#if D
  let bi = t;
  let bj = t;
//#end
//#if 1 - D
  var k = t;
  var bi = 0u;
  while (k >= pr.nb - 1u - bi) {
    k -= pr.nb - 1u - bi;
    bi++;
  }
  let bj = bi + 1u + k;
//#end
  // The tile's slot in the upper block triangle (row-major), as `reduce` reads it.
  let slot = bi * pr.nb - (bi * (bi - 1u)) / 2u + (bj - bi);
  let np = pr.np;
  let p0 = chunk * pr.chunk;
  let p1 = min(p0 + pr.chunk, np);
  let n4 = (p1 - p0) / 4u;
//#for u in 0..T
  let ei${u} = pr.f_off + (bi * ${T}u + ${u}u) * pr.stride + p0;
//#if 1 - D
  let ej${u} = pr.f_off + (bj * ${T}u + ${u}u) * pr.stride + p0;
//#end
//#end
//#if TEX
  // Row u's chunk starts at vec4 ei_u / 4 of the buffer (aligned: S = O = 0).
  // texel.wgsl's fetch, with the mask out of the loop.
  let tmask = (1u << pr.tex_shift) - 1u;
//#for u in 0..T
  let ti${u} = ei${u} >> 2u;
//#if 1 - D
  let tj${u} = ej${u} >> 2u;
//#end
//#end
//#end
//#if 1 - TEX
  // Row u of either block starts (O + u·S) mod 4 floats into a vec4: T and
  // the chunk are multiples of 4, so the realignment is a constant per row.
//#for u in 0..T
  let bi${u} = (ei${u} >> 2u) + 1u;
  var pvi${u} = fv[bi${u} - 1u];
//#if 1 - D
  let bj${u} = (ej${u} >> 2u) + 1u;
  var pvj${u} = fv[bj${u} - 1u];
//#end
//#end
//#end
//#if W
  // The pixels' weights: vec4 q of the chunk is wv[wq0 + q].
  let wq0 = (pr.w_off + p0) / 4u;
//#end
  // A diagonal tile is symmetric: only u ≤ v is summed (and written twice).
//#for u in 0..T
//#for v in u*D..T
  var a${u}_${v} = 0.0;
//#end
//#end
  for (var q = 0u; q < n4; q++) {
//#if TEX
//#for u in 0..T
    let ki${u} = ti${u} + q;
    let yi${u} = textureLoad(ftex, vec2<u32>(ki${u} & tmask, ki${u} >> pr.tex_shift), 0);
//#if D
    let yj${u} = yi${u};
//#end
//#if 1 - D
    let kj${u} = tj${u} + q;
    let yj${u} = textureLoad(ftex, vec2<u32>(kj${u} & tmask, kj${u} >> pr.tex_shift), 0);
//#end
//#end
//#end
//#if 1 - TEX
//#for u in 0..T
    let ci${u} = fv[bi${u} + q];
    let yi${u} = shift4(pvi${u}, ci${u}, ${(O+u*S)%4}u);
    pvi${u} = ci${u};
//#if D
    let yj${u} = yi${u};
//#end
//#if 1 - D
    let cj${u} = fv[bj${u} + q];
    let yj${u} = shift4(pvj${u}, cj${u}, ${(O+u*S)%4}u);
    pvj${u} = cj${u};
//#end
//#end
//#end
  // Rows i weighed (W), rows j as they are.
//#if W
    let wq = wv[wq0 + q];
//#end
//#for u in 0..T
//#if W
    let xi${u} = yi${u} * wq;
//#end
//#if 1 - W
    let xi${u} = yi${u};
//#end
//#end
//#for u in 0..T
//#for v in u*D..T
    a${u}_${v} = fma(xi${u}.w, yj${v}.w, fma(xi${u}.z, yj${v}.z, fma(xi${u}.y, yj${v}.y, fma(xi${u}.x, yj${v}.x, a${u}_${v}))));
//#end
//#end
  }
  for (var q = p0 + n4 * 4u; q < p1; q++) {
//#for u in 0..T
    let zi${u} = fs[ei${u} - p0 + q];
//#if D
    let zj${u} = zi${u};
//#end
//#if 1 - D
    let zj${u} = fs[ej${u} - p0 + q];
//#end
//#end
//#if W
    let zw = ws[pr.w_off + q];
//#end
//#if 1 - W
    let zw = 1.0;
//#end
//#for u in 0..T
//#for v in u*D..T
    a${u}_${v} = fma(zi${u} * zw, zj${v}, a${u}_${v});
//#end
//#end
  }
  if (g < total) {
    let o = (chunk * pr.ntiles + slot) * ${T*T}u;
//#for u in 0..T
//#for v in u*D..T
    part[o + ${u*T+v}u] = a${u}_${v};
//#if D * v - D * u
    part[o + ${v*T+u}u] = a${u}_${v};
//#end
//#end
//#end
  }
}

// The reduce reads the partial sums through a read-only vec4 view of binding
// 3's buffer; A, G and dG are vec4 views (C % 4 == 0, g_off % 4 == 0).
@group(0) @binding(4) var<storage, read> target4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> gram4: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> dgram4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> loss_part: array<f32>;
@group(0) @binding(9) var<storage, read> parts4: array<vec4<f32>>;

override WRITE_G: bool = true;

// G's rows i..i+3, columns j..j+3 (rows b0..b3 of the block, scaled sums):
// written (WRITE_G) and, with LOSS, dG = coef·(G − A) there; returns Σ(G−A)²
// over the block.
fn put_block(i: u32, j: u32, b0: vec4<f32>, b1: vec4<f32>, b2: vec4<f32>, b3: vec4<f32>) -> f32 {
  let c4 = pr.c / 4u;
  let o = i * c4 + j / 4u;
  var sq = 0.0;
//#for r in 0..4
  if (WRITE_G) {
    gram4[pr.g_off / 4u + o + ${r}u * c4] = b${r};
  }
  if (LOSS) {
    let d${r} = b${r} - target4[o + ${r}u * c4];
    dgram4[o + ${r}u * c4] = pr.coef * d${r};
    sq += dot(d${r}, d${r});
  }
//#end
  return sq;
}

// One 4×4 block of a tile of the upper block triangle per item: the chunks'
// sums (vec4 loads along the tile's rows), written where it is and, off the
// diagonal tiles, transposed where its mirror image is (the diagonal tiles
// hold both halves already, see `partial`). With LOSS, also the style loss
// w·Σ(G−A)² (per-workgroup partial sums).
@compute @workgroup_size(RW)
fn reduce(
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  pr = params[nwg.x >> 31u];
  let items = pr.ntiles * ${(T/4)*(T/4)}u;
  let chunk4 = pr.ntiles * ${T*T/4}u; // vec4s between chunks
  var sq = 0.0;
  // Each workgroup takes an equal share of the items (lavapipe gives each
  // thread a contiguous half of the workgroups: with the items packed into
  // the first workgroups, one thread would do them all).
  let per = (items + nwg.x - 1u) / nwg.x;
  let end = min(wid.x * per + per, items);
  for (var e = wid.x * per + lid.x; e < end; e += RW) {
    let t = e / ${(T/4)*(T/4)}u;
    let u4 = (e / ${T/4}u) % ${T/4}u;
    let v4 = e % ${T/4}u;
    var k = t;
    var bi = 0u;
    while (k >= pr.nb - bi) {
      k -= pr.nb - bi;
      bi++;
    }
    let bj = bi + k;
    let o = t * ${T*T/4}u + u4 * ${T}u + v4;
//#for r in 0..4
    var s${r} = vec4<f32>(0.0);
//#end
    for (var q = 0u; q < pr.nchunks; q++) {
//#for r in 0..4
      s${r} += parts4[q * chunk4 + o + ${r*T/4}u];
//#end
    }
//#for r in 0..4
    let b${r} = s${r} * pr.inv_n;
//#end
    let i = bi * ${T}u + u4 * 4u;
    let j = bj * ${T}u + v4 * 4u;
    sq += put_block(i, j, b0, b1, b2, b3);
    if (bi != bj) {
      sq += put_block(
        j,
        i,
        vec4<f32>(b0.x, b1.x, b2.x, b3.x),
        vec4<f32>(b0.y, b1.y, b2.y, b3.y),
        vec4<f32>(b0.z, b1.z, b2.z, b3.z),
        vec4<f32>(b0.w, b1.w, b2.w, b3.w),
      );
    }
  }
  if (LOSS) {
    let total = workgroup_sum(lid.x, sq);
    if (lid.x == 0u) {
      loss_part[pr.part_off + wid.x] = pr.weight * total;
    }
  }
}

// `collapse`: sums the nchunks chunks of a `partial` scratch (binding 9) into
// chunk slot g_off / (ntiles·T²) of another (binding 11, written, not
// added): each tile of a split image is summed on its own, and `reduce` then
// sums the tiles' chunks as it sums an image's.
@group(0) @binding(11) var<storage, read_write> acc4: array<vec4<f32>>;

@compute @workgroup_size(64)
fn collapse(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  pr = params[nwg.x >> 31u];
  let chunk4 = pr.ntiles * ${T*T/4}u;
  for (var o = gid.x; o < chunk4; o += nwg.x * 64u) {
    var s = vec4<f32>(0.0);
    for (var q = 0u; q < pr.nchunks; q++) {
      s += parts4[q * chunk4 + o];
    }
    acc4[pr.g_off / 4u + o] = s;
  }
}
