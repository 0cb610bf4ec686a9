// Shared by gram.wgsl and loss.wgsl (prepended by their wrappers): the sum of
// one value per invocation over a workgroup of RW invocations, in two levels
// through workgroup memory (RS partial sums of RS values each): lavapipe runs
// a barrier as a switch through all of the workgroup's SIMD groups, so three
// barriers cost less than a tree's nine. Every invocation must call it
// (uniform control flow); every invocation gets the sum.

const RW: u32 = 256u;
const RS: u32 = 16u; // RS·RS = RW
var<workgroup> red: array<f32, RW>;

fn workgroup_sum(lid: u32, v: f32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  if (lid < RS) {
    var s = 0.0;
    for (var k = 0u; k < RS; k++) {
      s += red[lid * RS + k];
    }
    red[lid * RS] = s;
  }
  workgroupBarrier();
  var sum = 0.0;
  for (var k = 0u; k < RS; k++) {
    sum += red[k * RS];
  }
  workgroupBarrier(); // red may be reused by the next call
  return sum;
}
