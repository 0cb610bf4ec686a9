// 1×1 convolution as a register-tiled GEMM: out[co][p] = Σ_ci W[ci][co]·x[ci][p]
// (+ bias, ReLU). Serves the squeeze and expand1x1 layers, their input
// gradients (with the transposed kernel), and the Gram backward (W = dG).
// Template parameters (src/gpu/template.ts): TMV vec4 groups of output
// channels × TN pixels per invocation, pixels strided by WG (pixel j of a
// lane = base + j·WG + lane); WG invocations.
// Needs cout % (4·TMV) == 0; x and out may sit at any element offset.
// Options, bindings 1 and 3–5 and the epilogue: conv_common.wgsl.

struct Params {
  cin: u32, cout4: u32, np: u32, x_off: u32,
  out_off: u32, mask_out_off: u32, _p0: u32, _p1: u32,
}

@group(0) @binding(0) var<uniform> pr: Params;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;    // [cin][cout]

@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let np = pr.np;
  // Channel groups vary fastest over the workgroups, so the launches that
  // share a block of pixels run back to back while it is in the caches.
  let cog = wid.x * ${TMV}u;
  let p0 = wid.y * ${WG*TN}u + li;
//#for j in 0..TN
  let q${j} = min(p0 + ${j*WG}u, np - 1u);
//#end
//#for i in 0..TMV
//#for j in 0..TN
  var a${i}_${j} = vec4<f32>(0.0);
//#end
//#end
  for (var ci = 0u; ci < pr.cin; ci++) {
    let wr = ci * pr.cout4 + cog;
    let xr = ci * np;
//#for i in 0..TMV
    let w${i} = w[wr + ${i}u];
//#end
//#for j in 0..TN
    let x${j} = vec4<f32>(load_x(xr + q${j}));
//#end
//#for i in 0..TMV
//#for j in 0..TN
    a${i}_${j} = fma(w${i}, x${j}, a${i}_${j});
//#end
//#end
  }
//#for i in 0..TMV
  {
    var b = vec4<f32>(0.0);
    if (HAS_BIAS) {
      b = bias[cog + ${i}u];
    }
    let ob = (cog + ${i}u) * 4u * np;
//#for j in 0..TN
    if (p0 + ${j*WG}u < np) {
      let v = a${i}_${j} + b;
      let o = ob + p0 + ${j*WG}u;
      store(o, v.x);
      store(o + np, v.y);
      store(o + 2u * np, v.z);
      store(o + 3u * np, v.w);
    }
//#end
  }
//#end
}
