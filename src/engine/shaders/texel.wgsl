// Shared by the kernels that fetch a buffer's vec4s from its texture copy (a
// FeatureTexture, src/engine/ops/context.ts; prepended by src/engine/ops/conv.ts and
// src/engine/ops/pool.ts): on lavapipe a texel fetch costs far less than a storage
// load where the lanes' addresses scatter (bench/NOTES.md, rows 49–56).

// Vec4 k of the buffer, which is texel (k mod 2^shift, k >> shift) of t.
fn texel(t: texture_2d<f32>, k: u32, shift: u32) -> vec4<f32> {
  return textureLoad(t, vec2<u32>(k & ((1u << shift) - 1u), k >> shift), 0);
}
