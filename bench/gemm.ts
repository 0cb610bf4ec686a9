/**
 * Micro-benchmark of the implicit-GEMM convolution kernel as a plain GEMM
 * (a 1x1 convolution: [M×K]·[K×N]) and on SqueezeNet shapes, over tile shapes.
 * Usage: deno task bench:gemm [--size 1024]
 * @module
 */
import { parseArgs } from "node:util";
import { acquireGpu } from "../src/gpu/device.ts";
import { BufferPool } from "../src/gpu/pool.ts";
import { PipelineCache } from "../src/gpu/pipelines.ts";
import { Program } from "../src/gpu/scheduler.ts";
import { chooseTile, conv2d, type ConvShape, type Tile } from "../src/ops/conv.ts";
import { OpContext, Scope, view } from "../src/ops/context.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: { size: { type: "string", default: "1024" }, tiles: { type: "string" } },
});
const gpu = await acquireGpu();
const pool = new BufferPool(gpu.device);
const ctx = new OpContext(gpu.device, pool, new PipelineCache(gpu.device));

async function time(shape: ConvShape, tile: Tile): Promise<number> {
  const scope = new Scope(pool);
  const prog = new Program(gpu.device);
  const oh = Math.floor((shape.h + 2 * shape.pad - shape.kh) / shape.stride) + 1;
  const ow = Math.floor((shape.w + 2 * shape.pad - shape.kw) / shape.stride) + 1;
  await conv2d(ctx, scope, prog, {
    label: "gemm",
    shape,
    x: view(scope.floats(shape.cin * shape.h * shape.w, "x")),
    weights: scope.floats(shape.kh * shape.kw * shape.cin * shape.cout, "w"),
    out: view(scope.floats(shape.cout * oh * ow, "y")),
    tile,
  });
  const run = async (reps: number) => {
    const enc = gpu.device.createCommandEncoder();
    for (let r = 0; r < reps; r++) prog.encode(enc);
    gpu.device.queue.submit([enc.finish()]);
    await gpu.device.queue.onSubmittedWorkDone();
  };
  await run(1);
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const t0 = performance.now();
    await run(5);
    times.push((performance.now() - t0) / 5);
  }
  scope.dispose();
  times.sort((a, b) => a - b);
  return times[1];
}

const n = Number(values.size);
const shapes: [string, ConvShape][] = [
  [`gemm ${n}³`, { cin: n, cout: n, h: 1, w: n, kh: 1, kw: 1, stride: 1, pad: 0 }],
  ["conv1 192x256", { cin: 3, cout: 64, h: 192, w: 256, kh: 3, kw: 3, stride: 2, pad: 0 }],
  ["fire3.e3 47x63", { cin: 16, cout: 64, h: 47, w: 63, kh: 3, kw: 3, stride: 1, pad: 1 }],
  ["fire5.e3 23x31", { cin: 32, cout: 128, h: 23, w: 31, kh: 3, kw: 3, stride: 1, pad: 1 }],
  ["fire5.sq 23x31", { cin: 256, cout: 32, h: 23, w: 31, kh: 1, kw: 1, stride: 1, pad: 0 }],
];
const tiles: Tile[] = values.tiles ? JSON.parse(values.tiles) : [
  { TM: 4, TN: 4, WGX: 16, WGY: 4 },
  { TM: 8, TN: 4, WGX: 16, WGY: 4 },
  { TM: 4, TN: 8, WGX: 16, WGY: 4 },
  { TM: 8, TN: 8, WGX: 8, WGY: 8 },
  { TM: 8, TN: 8, WGX: 16, WGY: 4 },
  { TM: 8, TN: 8, WGX: 32, WGY: 2 },
];
console.log(`adapter: ${gpu.adapterName}`);
for (const [name, s] of shapes) {
  const oh = Math.floor((s.h + 2 * s.pad - s.kh) / s.stride) + 1;
  const ow = Math.floor((s.w + 2 * s.pad - s.kw) / s.stride) + 1;
  const flops = 2 * s.cout * oh * ow * s.cin * s.kh * s.kw;
  const row = [name.padEnd(18)];
  for (const t of [chooseTile(s.cout, oh * ow), ...tiles]) {
    const ms = await time(s, t);
    row.push(
      `${t.TM}x${t.TN}/${t.WGX}x${t.WGY}: ${ms.toFixed(2)}ms ${(flops / ms / 1e6).toFixed(1)}GF/s`,
    );
  }
  console.log(row.join("  "));
}
