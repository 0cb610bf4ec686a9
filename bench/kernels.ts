/**
 * Micro-benchmark of the convolution kernels: a 1024² GEMM (a 1×1
 * convolution [M×K]·[K×N]) and the SqueezeNet shapes of an iteration at
 * 192×256, each with GFLOP/s from GPU timestamps.
 * Usage: deno task bench:kernels [--size 1024] [--tiles JSON]
 * @module
 */
import { parseArgs } from "node:util";
import { acquireDenoGpu } from "../src/deno/driver.ts";
import { BufferPool } from "../src/engine/gpu/pool.ts";
import { PipelineCache } from "../src/engine/gpu/pipelines.ts";
import { Profiler, Program } from "../src/engine/gpu/scheduler.ts";
import { conv2d, convOut, type ConvShape } from "../src/engine/ops/conv.ts";
import {
  defaultTiles,
  OpContext,
  planeStride,
  Scope,
  type TileTable,
  view,
} from "../src/engine/ops/context.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    size: { type: "string", default: "1024" },
    tiles: { type: "string" },
    only: { type: "string" },
  },
});
const gpu = await acquireDenoGpu();
const pool = new BufferPool(gpu.device);
const tiles: TileTable = {
  ...defaultTiles(gpu.isFallback, gpu.cpuLanes),
  ...(values.tiles ? JSON.parse(values.tiles) : {}),
};
const ctx = new OpContext(gpu.device, pool, new PipelineCache(gpu.device), tiles);

/** Median GPU ms of one launch of `shape`. */
async function time(shape: ConvShape, use: "forward" | "gradient" | "gram"): Promise<number> {
  const scope = new Scope(pool);
  const prog = new Program(gpu.device);
  const oh = convOut(shape.h, shape.kh, shape.stride, shape.pad);
  const ow = convOut(shape.w, shape.kw, shape.stride, shape.pad);
  // Laid out as in the network: the image (conv1's input) dense, every
  // activation with padded planes.
  const xPlane = shape.stride === 1 ? planeStride(shape.h, shape.w) : shape.h * shape.w;
  const outPlane = planeStride(oh, ow);
  const x = scope.floats(shape.cin * xPlane, "x");
  await conv2d(ctx, scope, prog, {
    label: "k",
    shape,
    x: view(x, 0, xPlane),
    weights: scope.weights(shape.kh * shape.kw * shape.cin * shape.cout, "w"),
    out: view(scope.floats(shape.cout * outPlane, "y"), 0, outPlane),
    use,
  });
  const reps = 7;
  const prof = new Profiler(gpu.device, 1);
  const t: number[] = [];
  for (let r = 0; r < reps; r++) {
    const enc = gpu.device.createCommandEncoder();
    prog.encode(enc, prof);
    prof.resolve(enc);
    gpu.device.queue.submit([enc.finish()]);
    t.push((await prof.read())[0].ms);
  }
  prof.destroy();
  t.splice(0, 2);
  t.sort((a, b) => a - b);
  scope.dispose();
  return t[Math.floor(t.length / 2)];
}

const n = Number(values.size);
const s1 = { stride: 1, pad: 0, kh: 1, kw: 1 };
const s3 = { stride: 1, pad: 1, kh: 3, kw: 3 };
const shapes: [string, ConvShape][] = [
  [`gemm ${n}³`, { ...s1, cin: n, cout: n, h: 1, w: n }],
  ["conv1 192x256", { cin: 3, cout: 64, h: 192, w: 256, kh: 3, kw: 3, stride: 2, pad: 0 }],
  ["fire2.squeeze 47x63", { ...s1, cin: 64, cout: 16, h: 47, w: 63 }],
  ["fire3.squeeze 47x63", { ...s1, cin: 128, cout: 16, h: 47, w: 63 }],
  ["fire3.expand1x1 47x63", { ...s1, cin: 16, cout: 64, h: 47, w: 63 }],
  ["fire3.squeeze.back 47x63", { ...s1, cin: 16, cout: 128, h: 47, w: 63 }],
  ["fire5.squeeze 23x31", { ...s1, cin: 256, cout: 32, h: 23, w: 31 }],
  ["fire5.expand1x1 23x31", { ...s1, cin: 32, cout: 128, h: 23, w: 31 }],
  ["fire5.e1.back 23x31", { ...s1, cin: 128, cout: 32, h: 23, w: 31 }],
  ["fire3.expand3x3 47x63", { ...s3, cin: 16, cout: 64, h: 47, w: 63 }],
  ["fire3.e3.back 47x63", { ...s3, cin: 64, cout: 16, h: 47, w: 63 }],
  ["fire5.expand3x3 23x31", { ...s3, cin: 32, cout: 128, h: 23, w: 31 }],
  ["fire5.e3.back 23x31", { ...s3, cin: 128, cout: 32, h: 23, w: 31 }],
  ["conv1 gram.back 95x127", { ...s1, cin: 64, cout: 64, h: 95, w: 127 }],
  ["conv1 gram.back 255x341", { ...s1, cin: 64, cout: 64, h: 255, w: 341 }],
  ["fire5 gram.back 63x85", { ...s1, cin: 256, cout: 256, h: 63, w: 85 }],
  ["fire5 gram.back 23x31", { ...s1, cin: 256, cout: 256, h: 23, w: 31 }],
  ["fire3 gram.back 47x63", { ...s1, cin: 128, cout: 128, h: 47, w: 63 }],
];
console.log(`${gpu.adapterName}; tiles ${JSON.stringify(tiles)}`);
for (const [name, s] of shapes) {
  if (values.only && !name.includes(values.only)) continue;
  const oh = convOut(s.h, s.kh, s.stride, s.pad);
  const ow = convOut(s.w, s.kw, s.stride, s.pad);
  const flops = 2 * s.cout * oh * ow * s.cin * s.kh * s.kw;
  const use = name.includes("e3.back") ? "gradient" : name.includes("gram") ? "gram" : "forward";
  const ms = await time(s, use);
  console.log(
    `${name.padEnd(24)} ${ms.toFixed(2).padStart(8)} ms ${
      (flops / ms / 1e6).toFixed(2).padStart(7)
    } GFLOP/s`,
  );
}
