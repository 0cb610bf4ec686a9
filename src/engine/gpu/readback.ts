/**
 * Reading float ranges of buffers back to the CPU: one staging buffer and one
 * map for as many ranges as fit the largest buffer together.
 * @module
 */

/** A range of a buffer, in f32 elements. */
export interface FloatRange {
  buffer: GPUBuffer;
  /** Offset in elements. */
  offset: number;
  floats: number;
}

/** Copies `ranges` into one staging buffer, maps it and returns each range's values. */
async function readBatch(device: GPUDevice, ranges: FloatRange[]): Promise<Float32Array[]> {
  const total = ranges.reduce((a, r) => a + r.floats, 0);
  const staging = device.createBuffer({
    size: Math.max(4, total * 4),
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const enc = device.createCommandEncoder();
  let at = 0;
  for (const r of ranges) {
    if (r.floats > 0) enc.copyBufferToBuffer(r.buffer, r.offset * 4, staging, at * 4, r.floats * 4);
    at += r.floats;
  }
  device.queue.submit([enc.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const all = new Float32Array(staging.getMappedRange().slice(0));
  staging.destroy();
  at = 0;
  return ranges.map((r) => {
    const part = all.slice(at, at + r.floats);
    at += r.floats;
    return part;
  });
}

/**
 * Reads several buffer ranges back, batched so that no staging buffer is
 * over `maxBytes` (a single larger range gets one of its own).
 */
export async function readRanges(
  device: GPUDevice,
  maxBytes: number,
  ranges: FloatRange[],
): Promise<Float32Array[]> {
  const max = maxBytes / 4;
  const out: Float32Array[] = [];
  for (let k = 0; k < ranges.length;) {
    let n = 0;
    let end = k;
    while (end < ranges.length && (end === k || n + ranges[end].floats <= max)) {
      n += ranges[end++].floats;
    }
    out.push(...await readBatch(device, ranges.slice(k, end)));
    k = end;
  }
  return out;
}
