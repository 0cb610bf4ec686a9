// Input gradient of a 3×3 stride-2 convolution without padding with at most
// 4 input channels (conv1): dx[ci][iy][ix] = Σ over (co, ky, kx) with
// iy = 2·oy+ky, ix = 2·ox+kx of W[ky][kx][ci][co]·dy[co][oy][ox].
// Each invocation owns a 2 × 2Q block of dx (rows 2n, 2n+1; columns 2·m0 …
// 2·m0+2Q−1) for all input channels (vec4 accumulators). Per co it loads the
// 2 × (Q+1) values of dy (rows n−1, n; columns m0−1 … m0+Q−1, as realigned
// vec4s; Q % 4 == 0) and the 9 taps as vec4s from the repacked kernel
// wb[co][ky·3+kx] = vec4(W[ky][kx][0..3][co]). DT 1 fetches dy from a
// texture copy of its buffer (a FeatureTexture, src/engine/ops/context.ts: vec4 k
// is texel (k mod 2^tex_shift, k >> tex_shift)), faster on lavapipe than
// storage loads. WU 1 reads wb as a uniform array (row 57 of
// bench/NOTES.md). Template parameters: Q, WG, TV, DT, WU. shift4() comes from
// shift4.wgsl, texel() from texel.wgsl.
// TV 1 (dx is the image's gradient, dense at offset 0): the total-variation
// loss w·(Σ(x[y+1]−x[y])² + Σ(x[x+1]−x[x])²) of the image x (binding 4, dense
// like dx) is fused in: dx = result + 2w·(the adjoint of the differences), and
// each invocation writes w·Σ(differences²) over its pixels to
// parts[part_off + its index] (binding 5). Its rows 2n−1 … 2n+2, columns
// 2·m0 − 1 … 2·m0 + 2Q, are loaded once per channel as realigned vec4s.

struct Params {
  cout: u32, cin: u32, h: u32, w: u32,
  oh: u32, ow: u32, nseg: u32, dy_off: u32,
  dx_off: u32, dy_plane: u32, dx_plane: u32, part_off: u32,
  tv_weight: f32, tex_shift: u32, _p1: u32, _p2: u32,
}

// The parameters sit at index 0, read at an index the driver cannot fold
// (num_workgroups.x >> 31 is 0 for any legal count): lavapipe otherwise
// specialises kernels on the uniforms that steer their loops (bench/NOTES.md,
// row 41).
@group(0) @binding(0) var<uniform> params: array<Params, 2>;
var<private> pr: Params;
//#if 1 - DT
@group(0) @binding(1) var<storage, read> dyv: array<vec4<f32>>; // dy as vec4s
//#end
//#if DT
@group(0) @binding(6) var dytex: texture_2d<f32>; // a copy of dy's buffer
//#end
//#if 1 - WU
@group(0) @binding(2) var<storage, read> wb: array<vec4<f32>>;
//#end
//#if WU
@group(0) @binding(2) var<uniform> wb: array<vec4<f32>, 4096>;
//#end
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;
//#if TV
@group(0) @binding(4) var<storage, read> xv: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> parts: array<f32>;
//#end

// Vec4 k of dy's buffer.
fn dyload(k: u32) -> vec4<f32> {
//#if DT
  return texel(dytex, k, pr.tex_shift);
//#end
//#if 1 - DT
  return dyv[k];
//#end
}

@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg_p: vec3<u32>) {
  pr = params[nwg_p.x >> 31u];
  let nrow = (pr.h + 1u) / 2u;
  let live = gid.x < nrow * pr.nseg;
  let sg = min(gid.x, nrow * pr.nseg - 1u);
  let n = sg / pr.nseg;
  let m0 = (sg % pr.nseg) * ${Q}u;
  let npix = pr.dy_plane;
  let r0v = n >= 1u && n - 1u < pr.oh;
  let r1v = n < pr.oh;
  let r0 = min(n - select(0u, 1u, n >= 1u), pr.oh - 1u) * pr.ow;
  let r1 = min(n, pr.oh - 1u) * pr.ow;
//#for c in 0..Q+1
  let cx${c} = i32(m0) + ${c} - 1;
  let cv${c} = cx${c} >= 0 && cx${c} < i32(pr.ow);
  let cc${c} = u32(clamp(cx${c}, 0, i32(pr.ow) - 1));
  let o0_${c} = r0 + cc${c};
  let o1_${c} = r1 + cc${c};
  let k0_${c} = r0v && cv${c};
  let k1_${c} = r1v && cv${c};
//#end
//#for r in 0..2
//#for t in 0..2*Q
  var a${r}_${t} = vec4<f32>(0.0);
//#end
//#end
  for (var co = 0u; co < pr.cout; co++) {
    let db = pr.dy_off + co * npix;
    let wo = co * 9u;
    // Rows n−1 and n of dy, columns m0−1 … m0+Q−1, as aligned vec4s
    // realigned in registers (dy rows start anywhere).
//#for r in 0..2
    let e${r} = i32(db + r${r} + m0) - 1;
    let s${r} = u32(e${r} & 3);
//#for g in 0..Q/4+2
    let X${r}_${g} = dyload(u32((e${r} >> 2u) + ${g}));
//#end
//#for g in 0..Q/4+1
    let y${r}_${g} = shift4(X${r}_${g}, X${r}_${g+1}, s${r});
//#end
//#end
//#for c in 0..Q+1
    let g0_${c} = select(0.0, y0_${c/4}[${c%4}], k0_${c});
    let g1_${c} = select(0.0, y1_${c/4}[${c%4}], k1_${c});
//#end
//#for k in 0..9
    let w${k/3}${k%3} = wb[wo + ${k}u];
//#end
//#for t in 0..Q
    a0_${2*t} = fma(w22, vec4<f32>(g0_${t}), fma(w20, vec4<f32>(g0_${t+1}), fma(w02, vec4<f32>(g1_${t}), fma(w00, vec4<f32>(g1_${t+1}), a0_${2*t}))));
    a0_${2*t+1} = fma(w21, vec4<f32>(g0_${t+1}), fma(w01, vec4<f32>(g1_${t+1}), a0_${2*t+1}));
    a1_${2*t} = fma(w12, vec4<f32>(g1_${t}), fma(w10, vec4<f32>(g1_${t+1}), a1_${2*t}));
    a1_${2*t+1} = fma(w11, vec4<f32>(g1_${t+1}), a1_${2*t+1});
//#end
  }
  let hw = pr.dx_plane;
//#if 1 - TV
//#for r in 0..2
//#for t in 0..2*Q
  {
    let iy = 2u * n + ${r}u;
    let ix = 2u * m0 + ${t}u;
    if (live && iy < pr.h && ix < pr.w) {
      let o = pr.dx_off + iy * pr.w + ix;
      for (var ci = 0u; ci < pr.cin; ci++) {
        dx[o + ci * hw] = a${r}_${t}[ci];
      }
    }
  }
//#end
//#end
//#end
//#if TV
  var tsq = 0.0;
  let tw = 2.0 * pr.tv_weight;
  for (var ci = 0u; ci < pr.cin; ci++) {
    // Image rows 2n − 1 + k (clamped; the masks drop what lies outside).
//#for k in 0..4
    let e${k} = i32(ci * hw + min(max(2u * n + ${k}u, 1u) - 1u, pr.h - 1u) * pr.w + 2u * m0) - 1;
    let s${k} = u32(e${k} & 3);
//#for g in 0..Q/2+2
    let X${k}_${g} = xv[u32((e${k} >> 2u) + ${g})];
//#end
//#for g in 0..Q/2+1
    let y${k}_${g} = shift4(X${k}_${g}, X${k}_${g+1}, s${k});
//#end
//#end
//#for r in 0..2
//#for t in 0..2*Q
    {
      let iy = 2u * n + ${r}u;
      let ix = 2u * m0 + ${t}u;
      let v = y${r+1}_${(t+1)/4}[${(t+1)%4}];
      let dd = select(0.0, y${r+2}_${(t+1)/4}[${(t+1)%4}] - v, iy + 1u < pr.h);
      let du = select(0.0, v - y${r}_${(t+1)/4}[${(t+1)%4}], iy > 0u);
      let dr = select(0.0, y${r+1}_${(t+2)/4}[${(t+2)%4}] - v, ix + 1u < pr.w);
      let dl = select(0.0, v - y${r+1}_${t/4}[${t%4}], ix > 0u);
      // `&`, not `&&`: short-circuit conditions become branches, and
      // SwiftShader's compiler (Chromium's CPU adapter) ran for minutes on
      // these loop-invariant ones inside the ci loop.
      if (live & (iy < pr.h) & (ix < pr.w)) {
        dx[iy * pr.w + ix + ci * hw] = a${r}_${t}[ci] + tw * (du - dd + dl - dr);
        tsq += dd * dd + dr * dr;
      }
    }
//#end
//#end
  }
  parts[pr.part_off + gid.x] = pr.tv_weight * tsq;
//#end
}
