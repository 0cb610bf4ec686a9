// Shared by the kernels that load rows starting at any element offset as
// aligned vec4s (prepended by src/engine/ops/conv.ts and src/engine/ops/gram.ts).

// The 4 floats starting s (0..3) floats into the aligned pair (a, b).
fn shift4(a: vec4<f32>, b: vec4<f32>, s: u32) -> vec4<f32> {
  let t1 = vec4<f32>(a.yzw, b.x);
  let t2 = vec4<f32>(a.zw, b.xy);
  let t3 = vec4<f32>(a.w, b.xyz);
  return select(select(select(a, t1, s == 1u), t2, s == 2u), t3, s == 3u);
}
