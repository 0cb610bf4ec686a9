/**
 * The optical flow measured (issue #32): synthetic pairs of frames with a
 * known motion, made from examples/chelsea.png (CC0) — sub-pixel shifts, a
 * zoom, a rotation, a textured patch and a flat square moving over a still
 * background — and the mean end-point error of src/engine/video/flow.ts's
 * forward flow on them, the time per pair (forward and backward flows and the consistency
 * check), and on the moving patch the consistency weights of the
 * disoccluded band. Writes every pair to `--out` (PNG frames, the ground
 * truth as raw float32) for bench/flow_opencv.py to measure OpenCV's flows
 * on the same pairs. Results: bench/FLOW.md.
 *
 *   deno run -A bench/flow_epe.ts [--out /tmp/flow-pairs] [--sizes 256x192,512x384] [--reps 5]
 * @module
 */
import { parseArgs } from "node:util";
import { acquireDenoGpu } from "../src/deno/driver.ts";
import { readImage, writeImage } from "../src/deno/image/mod.ts";
import { PipelineCache } from "../src/engine/gpu/pipelines.ts";
import { BufferPool } from "../src/engine/gpu/pool.ts";
import { Program, readBuffer } from "../src/engine/gpu/scheduler.ts";
import { toTensor } from "../src/engine/image/tensor.ts";
import type { RgbImage } from "../src/engine/image/types.ts";
import { defaultTiles, OpContext, Scope } from "../src/engine/ops/context.ts";
import { FlowKernels } from "../src/engine/ops/flow.ts";
import { DEFAULT_FLOW_OPTIONS, FrameFlow } from "../src/engine/video/flow.ts";

/** A float RGB image, [H][W][3], 0..255. */
export interface Source {
  w: number;
  h: number;
  data: Float64Array;
}

/** A synthetic pair with its ground truth (forward flow of frame 0, [2][h][w]). */
export interface Pair {
  name: string;
  frame0: RgbImage;
  frame1: RgbImage;
  flow: Float32Array;
  /** 1 where the ground truth counts: 8 px from the border, its target inside frame 1. */
  valid: Uint8Array;
  /** Moving patch: 1 on frame 1's pixels disoccluded (background hidden in frame 0). */
  disoccluded?: Uint8Array;
  /** Moving patch: 1 within 2 px of the patch's edges in frame 1 (mixed pixels). */
  edge?: Uint8Array;
}

/** The source blurred by a Gaussian of σ (pixels), edges repeated. */
export function blurSource(img: RgbImage, sigma: number): Source {
  const { width: w, height: h } = img;
  const r = Math.ceil(3 * sigma);
  const k = Array.from(
    { length: 2 * r + 1 },
    (_, i) => Math.exp(-((i - r) ** 2) / (2 * sigma ** 2)),
  );
  const ks = k.reduce((a, b) => a + b, 0);
  const pass = (src: Float64Array, dx: number, dy: number) => {
    const out = new Float64Array(src.length);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let c = 0; c < 3; c++) {
          let s = 0;
          for (let t = -r; t <= r; t++) {
            const xx = Math.min(Math.max(x + t * dx, 0), w - 1);
            const yy = Math.min(Math.max(y + t * dy, 0), h - 1);
            s += k[t + r] * src[(yy * w + xx) * 3 + c];
          }
          out[(y * w + x) * 3 + c] = s / ks;
        }
      }
    }
    return out;
  };
  return { w, h, data: pass(pass(Float64Array.from(img.data), 1, 0), 0, 1) };
}

/** Keys' cubic convolution kernel (a = −0.5). */
function cubic(t: number): number {
  const a = Math.abs(t);
  if (a <= 1) return 1.5 * a ** 3 - 2.5 * a ** 2 + 1;
  if (a < 2) return -0.5 * a ** 3 + 2.5 * a ** 2 - 4 * a + 2;
  return 0;
}

/** The source's RGB at (x, y), bicubic, edges repeated. */
export function sample(s: Source, x: number, y: number): [number, number, number] {
  const [x0, y0] = [Math.floor(x), Math.floor(y)];
  const out: [number, number, number] = [0, 0, 0];
  for (let j = -1; j <= 2; j++) {
    const wy = cubic(y - (y0 + j));
    const yy = Math.min(Math.max(y0 + j, 0), s.h - 1);
    for (let i = -1; i <= 2; i++) {
      const wgt = wy * cubic(x - (x0 + i));
      const xx = Math.min(Math.max(x0 + i, 0), s.w - 1);
      for (let c = 0; c < 3; c++) out[c] += wgt * s.data[(yy * s.w + xx) * 3 + c];
    }
  }
  return out;
}

/** An 8-bit frame from a colour at each pixel. */
function render(
  w: number,
  h: number,
  at: (x: number, y: number) => [number, number, number],
): RgbImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = at(x, y);
      for (let c = 0; c < 3; c++) {
        data[(y * w + x) * 3 + c] = Math.min(255, Math.max(0, Math.round(v[c])));
      }
    }
  }
  return { width: w, height: h, data };
}

type Motion =
  | { kind: "shift"; dx: number; dy: number }
  | { kind: "zoom"; z: number }
  | { kind: "rotate"; deg: number }
  | { kind: "patch"; dx: number; dy: number; flat?: boolean };

/** The pairs measured. */
export const MOTIONS: { name: string; motion: Motion }[] = [
  { name: "shift 0.5 px", motion: { kind: "shift", dx: 0.5, dy: 0 } },
  { name: "shift (2.3, −1.4) px", motion: { kind: "shift", dx: 2.3, dy: -1.4 } },
  { name: "zoom 1.03×", motion: { kind: "zoom", z: 1.03 } },
  { name: "rotation 2°", motion: { kind: "rotate", deg: 2 } },
  { name: "patch moving (3.6, 2.2) px", motion: { kind: "patch", dx: 3.6, dy: 2.2 } },
  {
    name: "flat square moving (3.6, 2.2) px",
    motion: { kind: "patch", dx: 3.6, dy: 2.2, flat: true },
  },
];

/**
 * A w×h pair: frame 0 is the source's middle 85% resampled (bicubic, after
 * a Gaussian blur of σ = 0.6 source pixels); frame 1 is frame 0's scene
 * moved by the motion (a point at x in frame 0 is at T(x) in frame 1;
 * zoom and rotation about the frame's centre). The patch: a w/4 square
 * taken from elsewhere in the source, at (0.35w, 0.3h) in frame 0 and
 * moved by (dx, dy) in frame 1, over the still background, its edges
 * antialiased by the exact pixel coverage; with `flat`, the patch is one
 * flat colour (its motion inside is ambiguous: the case where a
 * forward–backward check alone leaves a ghost).
 */
export function makePair(src: Source, w: number, h: number, name: string, m: Motion): Pair {
  const s = Math.min(src.w / w, src.h / h) * 0.85;
  const [cx, cy] = [(w - 1) / 2, (h - 1) / 2];
  const toSrc = (x: number, y: number): [number, number] => [
    s * (x - cx) + (src.w - 1) / 2,
    s * (y - cy) + (src.h - 1) / 2,
  ];
  const bg = (x: number, y: number) => sample(src, ...toSrc(x, y));
  const flow = new Float32Array(2 * w * h);
  let frame1: RgbImage;
  let frame0 = render(w, h, bg);
  let disoccluded: Uint8Array | undefined;
  let edge: Uint8Array | undefined;
  if (m.kind === "patch") {
    const ps = Math.floor(w / 4);
    const [px, py] = [0.35 * w, 0.3 * h];
    const off = [-0.3 * src.w, 0.25 * src.h];
    const cover = (x: number, y: number, ox: number, oy: number) => {
      const ax = Math.min(Math.max(Math.min(x + 0.5, ox + ps) - Math.max(x - 0.5, ox), 0), 1);
      const ay = Math.min(Math.max(Math.min(y + 0.5, oy + ps) - Math.max(y - 0.5, oy), 0), 1);
      return ax * ay;
    };
    const patch = (x: number, y: number): number[] => {
      if (m.flat) return [200, 60, 40];
      const [qx, qy] = toSrc(x, y);
      return sample(src, qx + off[0], qy + off[1]);
    };
    const mixed = (a: number, p: number[], b: number[]): [number, number, number] => [
      a * p[0] + (1 - a) * b[0],
      a * p[1] + (1 - a) * b[1],
      a * p[2] + (1 - a) * b[2],
    ];
    frame0 = render(w, h, (x, y) => mixed(cover(x, y, px, py), patch(x, y), bg(x, y)));
    frame1 = render(
      w,
      h,
      (x, y) => mixed(cover(x, y, px + m.dx, py + m.dy), patch(x - m.dx, y - m.dy), bg(x, y)),
    );
    disoccluded = new Uint8Array(w * h);
    edge = new Uint8Array(w * h);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const i = y * w + x;
        if (cover(x, y, px, py) > 0.5) [flow[i], flow[w * h + i]] = [m.dx, m.dy];
        const c1 = cover(x, y, px + m.dx, py + m.dy);
        disoccluded[i] = cover(x, y, px, py) > 0.5 && c1 === 0 ? 1 : 0;
        // Within 2 px of the moved patch's outline.
        const [ex, ey] = [px + m.dx, py + m.dy];
        const near = x >= ex - 2.5 && x <= ex + ps + 1.5 && y >= ey - 2.5 && y <= ey + ps + 1.5;
        const deep = x >= ex + 2.5 && x <= ex + ps - 3.5 && y >= ey + 2.5 && y <= ey + ps - 3.5;
        edge[i] = near && !deep ? 1 : 0;
      }
    }
  } else {
    let t: (x: number, y: number) => [number, number];
    let inv: (x: number, y: number) => [number, number];
    if (m.kind === "shift") {
      t = (x, y) => [x + m.dx, y + m.dy];
      inv = (x, y) => [x - m.dx, y - m.dy];
    } else if (m.kind === "zoom") {
      t = (x, y) => [cx + m.z * (x - cx), cy + m.z * (y - cy)];
      inv = (x, y) => [cx + (x - cx) / m.z, cy + (y - cy) / m.z];
    } else {
      const a = m.deg * Math.PI / 180;
      const [c, sn] = [Math.cos(a), Math.sin(a)];
      t = (x, y) => [cx + c * (x - cx) - sn * (y - cy), cy + sn * (x - cx) + c * (y - cy)];
      inv = (x, y) => [cx + c * (x - cx) + sn * (y - cy), cy - sn * (x - cx) + c * (y - cy)];
    }
    frame1 = render(w, h, (x, y) => bg(...inv(x, y)));
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const [tx, ty] = t(x, y);
        [flow[y * w + x], flow[w * h + y * w + x]] = [tx - x, ty - y];
      }
    }
  }
  const valid = new Uint8Array(w * h);
  const margin = 8;
  for (let y = margin; y < h - margin; y++) {
    for (let x = margin; x < w - margin; x++) {
      const i = y * w + x;
      const [tx, ty] = [x + flow[i], y + flow[w * h + i]];
      valid[i] = tx >= 0 && tx <= w - 1 && ty >= 0 && ty <= h - 1 ? 1 : 0;
    }
  }
  return { name, frame0, frame1, flow, valid, disoccluded, edge };
}

/** Mean end-point error of `flow` against the pair's ground truth over its valid pixels. */
export function endPointError(pair: Pair, flow: Float32Array): number {
  const n = pair.valid.length;
  let sum = 0;
  let count = 0;
  for (let i = 0; i < n; i++) {
    if (!pair.valid[i]) continue;
    sum += Math.hypot(flow[i] - pair.flow[i], flow[n + i] - pair.flow[n + i]);
    count++;
  }
  return sum / count;
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      out: { type: "string", default: "/tmp/flow-pairs" },
      sizes: { type: "string", default: "256x192,512x384" },
      reps: { type: "string", default: "5" },
    },
  });
  const reps = Number(values.reps);
  const gpu = await acquireDenoGpu();
  const pool = new BufferPool(gpu.device);
  const ctx = new OpContext(
    gpu.device,
    pool,
    new PipelineCache(gpu.device),
    defaultTiles(gpu.isFallback, gpu.cpuLanes),
  );
  const src = blurSource(
    await readImage(new URL("../examples/chelsea.png", import.meta.url).pathname),
    0.6,
  );
  console.log(`adapter: ${gpu.adapterName}`);
  console.log(`options: ${JSON.stringify(DEFAULT_FLOW_OPTIONS)}`);
  const read = async (b: GPUBuffer, n: number) =>
    new Float32Array(await readBuffer(gpu.device, b, 0, n * 4));
  for (const size of values.sizes.split(",")) {
    const [w, h] = size.split("x").map(Number);
    const scope = new Scope(pool);
    const ff = await FrameFlow.create(ctx, scope, { h, w });
    const codes = scope.floats(h * w, "codes");
    const checkProg = new Program(gpu.device);
    await new FlowKernels(ctx, scope).check(checkProg, "codes", {
      prev: ff.prev,
      next: ff.next,
      forward: ff.forward,
      backward: ff.backward,
      out: codes,
      h,
      w,
      tau: DEFAULT_FLOW_OPTIONS.photometric,
      codes: true,
    });
    console.log(`\n${w}×${h}: ${ff.levels.length} levels, ${ff.program.dispatchCount} launches`);
    console.log("| pair | EPE (px) | c = 0 | ms per pair (median of " + reps + ") |");
    console.log("| --- | --- | --- | --- |");
    for (const { name, motion } of MOTIONS) {
      const pair = makePair(src, w, h, name, motion);
      const dir = `${values.out}/${w}x${h}/${name.replace(/[^a-z0-9.]+/gi, "_")}`;
      await Deno.mkdir(dir, { recursive: true });
      await writeImage(`${dir}/frame0.png`, pair.frame0);
      await writeImage(`${dir}/frame1.png`, pair.frame1);
      await Deno.writeFile(`${dir}/flow.f32`, new Uint8Array(pair.flow.buffer));
      await Deno.writeFile(`${dir}/valid.u8`, pair.valid);
      await Deno.writeTextFile(`${dir}/meta.json`, JSON.stringify({ name, w, h }));
      ff.write(
        gpu.device.queue,
        new Float32Array(toTensor(pair.frame0).data),
        new Float32Array(toTensor(pair.frame1).data),
      );
      const times: number[] = [];
      for (let r = 0; r <= reps; r++) {
        const t0 = performance.now();
        ff.run(gpu.device);
        await gpu.device.queue.onSubmittedWorkDone();
        if (r > 0) times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      const forward = await read(ff.forward, 2 * h * w);
      const weights = await read(ff.weights, h * w);
      const epe = endPointError(pair, forward);
      const zero = weights.filter((c) => c === 0).length / (h * w);
      const ms = times[Math.floor(times.length / 2)];
      console.log(
        `| ${name} | ${epe.toFixed(3)} | ${(100 * zero).toFixed(1)}% | ${ms.toFixed(0)} |`,
      );
      if (pair.disoccluded && pair.edge) {
        const enc = gpu.device.createCommandEncoder();
        checkProg.encode(enc);
        gpu.device.queue.submit([enc.finish()]);
        const code = await read(codes, h * w);
        report(pair, weights, code, w, h);
      }
    }
    scope.dispose();
  }
}

/** The moving patch's consistency weights: the disoccluded band, and the rest. */
function report(pair: Pair, c: Float32Array, code: Float32Array, w: number, h: number) {
  const band = { n: 0, zero: 0 };
  const rest = { n: 0, zero: 0 };
  const why = [0, 0, 0, 0];
  let photometricOnly = 0;
  for (let y = 8; y < h - 8; y++) {
    for (let x = 8; x < w - 8; x++) {
      const i = y * w + x;
      if (pair.disoccluded![i]) {
        band.n++;
        if (c[i] === 0) band.zero++;
        for (let b = 0; b < 4; b++) if (code[i] & (1 << b)) why[b]++;
        if (code[i] === 8) photometricOnly++;
      } else if (!pair.edge![i]) {
        rest.n++;
        if (c[i] === 0) rest.zero++;
      }
    }
  }
  const pc = (a: number, b: number) => `${(100 * a / b).toFixed(1)}%`;
  console.log(
    `  disoccluded band: ${band.n} px, c = 0 on ${pc(band.zero, band.n)} ` +
      `(outside ${pc(why[0], band.n)}, forward–backward ${pc(why[1], band.n)}, ` +
      `motion boundary ${pc(why[2], band.n)}, photometric ${pc(why[3], band.n)}, ` +
      `photometric alone ${pc(photometricOnly, band.n)}); ` +
      `elsewhere (8 px from the border, 2 px from the patch's outline): c = 0 on ` +
      `${pc(rest.zero, rest.n)} of ${rest.n} px`,
  );
}
