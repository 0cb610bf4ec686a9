// Shared by gram.wgsl and loss.wgsl (prepended by their wrappers): the sum of
// one value per invocation over a workgroup of RW invocations, as a tree in
// workgroup memory. Every invocation must call it (uniform control flow);
// every invocation gets the sum.

const RW: u32 = 256u;
var<workgroup> red: array<f32, RW>;

fn workgroup_sum(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var h = RW / 2u; h > 0u; h /= 2u) {
    if (lid < h) {
      red[lid] += red[lid + h];
    }
    workgroupBarrier();
  }
  let sum = red[0];
  workgroupBarrier(); // red may be reused by the next call
  return sum;
}
