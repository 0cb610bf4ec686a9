/**
 * The browser half of `deno task bench --browser`, bundled beside the page:
 * `stylizeBench(...)` times one iteration of the reference configuration in
 * the page as bench/bench.ts times it in Deno (batches of pipelined
 * iterations, one wait per batch, the median batch), on the page's engine.
 * @module
 */
import { resize, toTensor } from "../../src/engine/image/mod.ts";
import { DEFAULT_CONFIG, Optimizer, styleTargets } from "../../src/engine/model/optimize.ts";
import type { Engine } from "../../src/engine/model/stylizer.ts";
import { decodeImageFile } from "../../src/web/decode.ts";
import { adapterLabel } from "../../src/engine/gpu/device.ts";
import { createPageEngine } from "../../src/web/engine.ts";

/** One size's timing. */
export interface BrowserBench {
  size: [number, number];
  adapter: string;
  ms_per_iter: number;
  ms_min: number;
  ms_max: number;
  first_iteration_ms: number;
  batch: number;
  batches: number;
}

const median = (a: number[]) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** An example image (served beside the bench page) resized to h×w, as a tensor. */
async function example(name: string, h: number, w: number) {
  const blob = await (await fetch(name)).blob();
  return toTensor(resize(await decodeImageFile(blob, name), w, h));
}

/** Times `batches` batches of `batch` iterations at h×w after a first iteration and a warm-up. */
async function timeSize(
  engine: Engine,
  h: number,
  w: number,
  o: { batch: number; batches: number; warmup: number },
): Promise<BrowserBench> {
  const device = engine.gpu.device;
  const content = await example("chelsea.png", h, w);
  const style = await example("hubble_deep_field.jpg", h, w);
  const t0 = performance.now();
  const targets = await styleTargets(engine, [style], DEFAULT_CONFIG.styleLayers);
  const config = { ...DEFAULT_CONFIG, iters: 1 << 30, decayAt: 1 << 30 };
  const opt = await Optimizer.create(engine, { content, styleTargets: targets, config });
  let i = 0;
  const submit = () => {
    const enc = device.createCommandEncoder();
    opt.encode(enc, i++);
    device.queue.submit([enc.finish()]);
  };
  submit();
  await device.queue.onSubmittedWorkDone();
  const first = performance.now() - t0;
  for (let k = 0; k < o.warmup; k++) submit();
  await device.queue.onSubmittedWorkDone();
  const times: number[] = [];
  for (let b = 0; b < o.batches; b++) {
    const t = performance.now();
    for (let k = 0; k < o.batch; k++) submit();
    await device.queue.onSubmittedWorkDone();
    times.push((performance.now() - t) / o.batch);
  }
  opt.dispose();
  return {
    size: [h, w],
    adapter: adapterLabel(engine.gpu),
    ms_per_iter: median(times),
    ms_min: Math.min(...times),
    ms_max: Math.max(...times),
    first_iteration_ms: first,
    batch: o.batch,
    batches: o.batches,
  };
}

/**
 * Times each size on one engine, made once: the first size's first iteration
 * includes making it (the weights), as `deno task bench` counts it.
 */
async function stylizeBench(
  sizes: [number, number][],
  o: { batch: number; batches: number; warmup: number },
): Promise<BrowserBench[]> {
  const t0 = performance.now();
  const engine = await createPageEngine(document.baseURI);
  const engineMs = performance.now() - t0;
  try {
    const out = [];
    for (const [h, w] of sizes) {
      const r = await timeSize(engine, h, w, o);
      if (out.length === 0) r.first_iteration_ms += engineMs;
      out.push(r);
    }
    return out;
  } finally {
    engine.dispose();
  }
}

(globalThis as unknown as { stylizeBench: typeof stylizeBench }).stylizeBench = stylizeBench;
