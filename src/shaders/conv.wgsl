// Convolution as an implicit GEMM, register-tiled: each invocation computes
// TM output channels x TN output pixels, accumulating over K = Cin*KH*KW.
//
// `forward` serves every stride-1 use and conv1: forward convolutions (bias
// and ReLU fused), the backward of stride-1 convolutions (a convolution of the
// masked output gradient with the flipped, transposed kernel), and the Gram
// backward (a 1x1 "convolution" by dG). Options are override constants so
// each use gets its own specialised pipeline.
//
// `backward_input_strided` is the input gradient of a strided convolution
// (conv1): a gather over the output pixels each input pixel contributed to.
//
// Layouts: activations [C][H*W] (NCHW, batch 1); kernels [KH][KW][Cin][Cout].

override KH: u32 = 3u;
override KW: u32 = 3u;
override STRIDE: u32 = 1u;
override PAD: u32 = 1u;
override TM: u32 = 4u;       // output channels per invocation (<= 8)
override TN: u32 = 4u;       // output pixels per invocation (<= 8)
override WGX: u32 = 16u;     // invocations along pixels
override WGY: u32 = 4u;      // invocations along channels
override HAS_BIAS: bool = true;
override RELU: bool = true;
override ACCUMULATE: bool = false; // out += result instead of out = result
override MASK_IN: bool = false;    // input read as x * (mask_in > 0)
override MASK_OUT: bool = false;   // result multiplied by (mask_out > 0)

struct Params {
  cin: u32, cout: u32, h: u32, w: u32,   // input channels, output channels, input size
  oh: u32, ow: u32,                      // output size
  x_off: u32, out_off: u32,              // element offsets into x and out
  mask_in_off: u32, mask_out_off: u32,   // element offsets into the masks
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> wk: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> mask_in: array<f32>;
@group(0) @binding(6) var<storage, read> mask_out: array<f32>;

const MAXT: u32 = 8u;

fn load_x(i: u32) -> f32 {
  let v = x[p.x_off + i];
  if (MASK_IN) {
    return select(0.0, v, mask_in[p.mask_in_off + i] > 0.0);
  }
  return v;
}

@compute @workgroup_size(WGX, WGY, 1)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>) {
  let npix = p.oh * p.ow;
  let hw = p.h * p.w;
  let pix0 = gid.x * TN;
  let co0 = gid.y * TM;
  if (pix0 >= npix || co0 >= p.cout) {
    return;
  }
  // Per column: output coordinates (clamped to the last pixel for loads).
  var oy: array<i32, MAXT>;
  var ox: array<i32, MAXT>;
  for (var j = 0u; j < TN; j++) {
    let pj = min(pix0 + j, npix - 1u);
    oy[j] = i32((pj / p.ow) * STRIDE) - i32(PAD);
    ox[j] = i32((pj % p.ow) * STRIDE) - i32(PAD);
  }
  var coi: array<u32, MAXT>;
  for (var i = 0u; i < TM; i++) {
    coi[i] = min(co0 + i, p.cout - 1u);
  }
  var acc: array<array<f32, MAXT>, MAXT>;
  for (var kh = 0u; kh < KH; kh++) {
    for (var kw = 0u; kw < KW; kw++) {
      var off: array<u32, MAXT>;
      var ok: array<bool, MAXT>;
      for (var j = 0u; j < TN; j++) {
        let iy = oy[j] + i32(kh);
        let ix = ox[j] + i32(kw);
        ok[j] = iy >= 0 && ix >= 0 && iy < i32(p.h) && ix < i32(p.w);
        off[j] = select(0u, u32(iy) * p.w + u32(ix), ok[j]);
      }
      let wbase = (kh * KW + kw) * p.cin * p.cout;
      for (var ci = 0u; ci < p.cin; ci++) {
        var a: array<f32, MAXT>;
        var b: array<f32, MAXT>;
        let wrow = wbase + ci * p.cout;
        for (var i = 0u; i < TM; i++) {
          a[i] = wk[wrow + coi[i]];
        }
        let xrow = ci * hw;
        for (var j = 0u; j < TN; j++) {
          b[j] = select(0.0, load_x(xrow + off[j]), ok[j]);
        }
        for (var i = 0u; i < TM; i++) {
          for (var j = 0u; j < TN; j++) {
            acc[i][j] = fma(a[i], b[j], acc[i][j]);
          }
        }
      }
    }
  }
  for (var i = 0u; i < TM; i++) {
    let co = co0 + i;
    if (co >= p.cout) {
      break;
    }
    var bi = 0.0;
    if (HAS_BIAS) {
      bi = bias[co];
    }
    for (var j = 0u; j < TN; j++) {
      let pj = pix0 + j;
      if (pj >= npix) {
        break;
      }
      let o = co * npix + pj;
      var v = acc[i][j] + bi;
      if (ACCUMULATE) {
        v += out[p.out_off + o];
      }
      if (RELU) {
        v = max(v, 0.0);
      }
      if (MASK_OUT) {
        v = select(0.0, v, mask_out[p.mask_out_off + o] > 0.0);
      }
      out[p.out_off + o] = v;
    }
  }
}

// Input gradient of a strided convolution with at most 4 input channels
// (conv1): dx[ci, iy, ix] = sum over (co, kh, kw) with iy = oy*STRIDE + kh - PAD
// of w[kh][kw][ci][co] * dy[co, oy, ox] * (y[co, oy, ox] > 0). One invocation
// per input pixel computes every input channel, so each dy value is loaded once.
// Here `x` holds dy, `mask_in` holds y, `out` receives dx (h, w = input size).
@compute @workgroup_size(64, 1, 1)
fn backward_input_strided(@builtin(global_invocation_id) gid: vec3<u32>) {
  let hw = p.h * p.w;
  let pix = gid.x;
  if (pix >= hw) {
    return;
  }
  let iy = i32(pix / p.w) + i32(PAD);
  let ix = i32(pix % p.w) + i32(PAD);
  let npix = p.oh * p.ow;
  var acc = vec4<f32>(0.0);
  for (var kh = 0u; kh < KH; kh++) {
    let ty = iy - i32(kh);
    if (ty < 0 || ty % i32(STRIDE) != 0 || ty / i32(STRIDE) >= i32(p.oh)) {
      continue;
    }
    let oyy = u32(ty) / STRIDE;
    for (var kw = 0u; kw < KW; kw++) {
      let tx = ix - i32(kw);
      if (tx < 0 || tx % i32(STRIDE) != 0 || tx / i32(STRIDE) >= i32(p.ow)) {
        continue;
      }
      let o = oyy * p.ow + u32(tx) / STRIDE;
      let tap = (kh * KW + kw) * p.cin;
      for (var co = 0u; co < p.cout; co++) {
        let g = load_x(co * npix + o);
        var wv = vec4<f32>(0.0);
        for (var ci = 0u; ci < p.cin; ci++) {
          wv[ci] = wk[(tap + ci) * p.cout + co];
        }
        acc = fma(wv, vec4<f32>(g), acc);
      }
    }
  }
  for (var ci = 0u; ci < p.cin; ci++) {
    let idx = ci * hw + pix;
    var v = acc[ci];
    if (ACCUMULATE) {
      v += out[p.out_off + idx];
    }
    out[p.out_off + idx] = v;
  }
}
