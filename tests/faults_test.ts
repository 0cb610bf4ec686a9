/**
 * Runs that survive real hardware, proved on any adapter with the fault
 * plans of src/engine/gpu/faults.ts: a device out of memory (a plan
 * retried with more tiles, or one line naming a size that fits), a GPU
 * memory cap, and a lost device (the run resumes from its last saved state
 * on a new device; three losses end it with the last good image).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { createEngine } from "../src/deno/stylizer.ts";
import { readImage } from "../src/deno/image/mod.ts";
import {
  formatBytes,
  GpuOutOfMemoryError,
  parseBytes,
  parseFaults,
} from "../src/engine/gpu/faults.ts";
import { UserError } from "../src/engine/errors.ts";
import type { LossSpec } from "../src/engine/model/stylizer.ts";
import { DEFAULT_CONFIG, optimize, Optimizer } from "../src/engine/model/optimize.ts";
import { StateKeeper } from "../src/engine/model/state_keeper.ts";
import { tapLayerIndex } from "../src/engine/model/squeezenet.ts";
import { randomFloats, relErr, relL2 } from "./helpers.ts";
import { weightsPath } from "./data.ts";
import { inTempDir, REPO, runCli } from "./cli_run.ts";

const WEIGHTS = await weightsPath();
const EX = join(REPO, "examples");

Deno.test("parseBytes reads 1.5G, 800M, 2GiB, 512MB and plain bytes; refuses the rest", () => {
  assert.equal(parseBytes("x", "1.5G"), 1.5 * 2 ** 30);
  assert.equal(parseBytes("x", "800M"), 800 * 2 ** 20);
  assert.equal(parseBytes("x", "2GiB"), 2 * 2 ** 30);
  assert.equal(parseBytes("x", "512MB"), 512 * 2 ** 20);
  assert.equal(parseBytes("x", "400000"), 400000);
  for (const bad of ["", "G", "-1G", "1.5X", "0"]) {
    assert.throws(() => parseBytes("--max-gpu-memory", bad), /--max-gpu-memory: .* is not a size/);
  }
});

Deno.test("parseFaults reads lose-device@N[,M…] and oom-above=BYTES, alone or joined by ;", () => {
  assert.deepEqual(parseFaults("lose-device@5"), { loseAt: [5] });
  assert.deepEqual(parseFaults("lose-device@3,9;oom-above=400M"), {
    loseAt: [3, 9],
    oomAbove: 400 * 2 ** 20,
  });
  assert.throws(() => parseFaults("lose-device"), UserError);
  assert.throws(() => parseFaults("oom-above=lots"), UserError);
});

/** A loss spec on random images of h×w (the default layers and weights). */
async function spec(engine: Awaited<ReturnType<typeof createEngine>>, h: number, w: number) {
  const img = (seed: number) => ({
    shape: [1, 3, h, w],
    data: randomFloats(3 * h * w, seed, -110, 130),
  });
  const content = await engine.features(img(2), ["fire2"]);
  const s: LossSpec = {
    ...DEFAULT_CONFIG,
    contentTarget: content.fire2!,
    styleTargets: await engine.tapGrams(img(3), DEFAULT_CONFIG.styleLayers),
  };
  return { x: img(1), spec: s };
}

Deno.test("out of GPU memory, a plan is built again in more tiles, says so once per retry, and computes what the whole image does", async () => {
  const [h, w] = [160, 200];
  const whole = await createEngine({ weights: WEIGHTS, tilesFile: false });
  const notices: string[] = [];
  try {
    const { x, spec: s } = await spec(whole, h, w);
    const a = await whole.lossAndGradient(x, s);
    const need = whole.poolStats.peakBytes;
    // A cap a little over half of what the whole image took: it must split.
    const capped = await createEngine({
      weights: WEIGHTS,
      tilesFile: false,
      faults: { oomAbove: Math.round(0.55 * need) },
      onNotice: (m) => notices.push(m),
    });
    try {
      const b = await capped.lossAndGradient(x, s);
      assert.ok(notices.length >= 1, "no notice");
      for (const n of notices) {
        assert.match(n, /^GPU memory: out of memory at [\d.]+ (MiB|GiB); retrying with \d+ tiles$/);
      }
      assert.ok(capped.lastLossPlan!.tiles > 1, `${capped.lastLossPlan!.tiles} tiles`);
      assert.ok(capped.poolStats.peakBytes <= 0.55 * need, `${capped.poolStats.peakBytes}`);
      for (const k of ["content", "style", "tv"] as const) {
        assert.ok(relErr(b.terms[k], a.terms[k]) <= 1e-6, `${k}: ${b.terms[k]} vs ${a.terms[k]}`);
      }
      assert.ok(relL2(b.gradient.data, a.gradient.data) <= 1e-6);
    } finally {
      capped.dispose();
    }
  } finally {
    whole.dispose();
  }
});

Deno.test("out of GPU memory even in the smallest tiles: one UserError naming a size that fits", async () => {
  const engine = await createEngine({
    weights: WEIGHTS,
    tilesFile: false,
    faults: { oomAbove: 40 * 2 ** 20 },
  });
  try {
    const [h, w] = [900, 1200];
    await assert.rejects(
      async () => {
        const { x, spec: s } = await spec(engine, h, w);
        await engine.lossAndGradient(x, s);
      },
      (e: Error) => {
        assert.ok(e instanceof UserError, String(e));
        assert.match(
          e.message,
          /^GPU memory: out of memory at [\d.]+ MiB even in \d+ tiles?; an output up to about \d+ px on its longer side may fit \(--size\)$/,
        );
        assert.ok(!e.message.includes("\n"));
        return true;
      },
    );
  } finally {
    engine.dispose();
  }
});

Deno.test("setMaxGpuMemory caps a made engine as the option does (sizes, tiles, the pool), undefined lifts it; a size the cap holds in no tiles says so", async () => {
  const engine = await createEngine({ weights: WEIGHTS, tilesFile: false });
  const capped = await createEngine({
    weights: WEIGHTS,
    tilesFile: false,
    maxGpuMemory: 300 * 2 ** 20,
  });
  try {
    const upto = tapLayerIndex("fire5");
    const [h, w] = [683, 1024];
    assert.equal(engine.gridFor(h, w, upto)?.tiles.length ?? 1, 1);
    engine.setMaxGpuMemory(300 * 2 ** 20);
    assert.equal(engine.ctx.pool.cap, 300 * 2 ** 20);
    assert.deepEqual(
      [engine.gridFor(h, w, upto)?.tiles.length, engine.estimateBytes(h, w)],
      [capped.gridFor(h, w, upto)?.tiles.length, capped.estimateBytes(h, w)],
    );
    assert.ok(engine.gridFor(h, w, upto)!.tiles.length > 1);
    assert.throws(
      () => engine.checkImageSize(2730, 4096),
      (e: Error) =>
        e instanceof UserError &&
        /^image too large for this GPU: 4096×2730 needs over [\d.]+ GiB of GPU memory even in tiles, over the 0\.3 GiB it may use; use a smaller output size$/
          .test(e.message),
    );
    engine.setMaxGpuMemory(undefined);
    assert.equal(engine.ctx.pool.cap, Infinity);
    assert.equal(engine.gridFor(h, w, upto), null);
  } finally {
    engine.dispose();
    capped.dispose();
  }
});

Deno.test("GpuOutOfMemoryError carries the bytes held, formatted the way messages say them", () => {
  const e = new GpuOutOfMemoryError(1.9 * 2 ** 30, "x");
  assert.equal(formatBytes(e.bytes), "1.9 GiB");
  assert.equal(formatBytes(800 * 2 ** 20), "800 MiB");
});

Deno.test("the optimiser's state read in pieces through a small staging buffer equals the state copied inline", async () => {
  const engine = await createEngine({ weights: WEIGHTS, tilesFile: false });
  try {
    const [h, w] = [40, 56];
    const { x, spec: s } = await spec(engine, h, w);
    const opt = await Optimizer.create(engine, {
      content: x,
      styleTargets: s.styleTargets,
      config: { ...DEFAULT_CONFIG, iters: 3, decayAt: 3 },
      avgDecay: 0.5,
    });
    try {
      for (let i = 0; i < 3; i++) await opt.submit(i);
      const inline = new StateKeeper(opt);
      const pieces = new StateKeeper(opt, 4096);
      assert.ok(inline.inline && !pieces.inline);
      const enc = engine.gpu.device.createCommandEncoder();
      const commit = inline.record(enc, 3);
      engine.gpu.device.queue.submit([enc.finish()]);
      commit();
      await inline.settle();
      await pieces.snapshot(3);
      const [a, b] = [inline.last!, pieces.last!];
      assert.equal(b.steps, 3);
      for (const k of ["x", "m", "v", "avg"] as const) {
        assert.equal(a[k]!.length, 3 * h * w, k);
        assert.deepEqual(b[k], a[k], k);
      }
      assert.ok(a.m.some((v) => v !== 0), "Adam's first moment after 3 steps");
      await inline.destroy();
      await pieces.destroy();
    } finally {
      opt.dispose();
    }
  } finally {
    engine.dispose();
  }
});

Deno.test("an iteration cut into many short submits computes exactly what one submit does, and its longest submit is timed", async () => {
  const run = async (submitMs?: number) => {
    const engine = await createEngine({ weights: WEIGHTS, tilesFile: false, submitMs });
    try {
      const { x, spec: s } = await spec(engine, 96, 128);
      return await optimize(engine, {
        content: x,
        styleTargets: s.styleTargets,
        config: { ...DEFAULT_CONFIG, iters: 4, decayAt: 3 },
      });
    } finally {
      engine.dispose();
    }
  };
  const [one, many] = [await run(), await run(0.01)];
  assert.equal(one.submits, 1);
  assert.ok(many.submits > 10, `${many.submits} submits`);
  assert.ok(many.longestSubmitMs > 0 && one.longestSubmitMs > 0);
  assert.deepEqual(many.records.map((r) => r.loss), one.records.map((r) => r.loss));
  assert.deepEqual(many.x.data, one.x.data);
});

/** A small CLI run of the bundled example with a trace. */
const RUN = [
  join(EX, "chelsea.png"),
  join(EX, "starry_night.jpg"),
  "--size",
  "96",
  "--min-size",
  "64",
  "--iters",
  "12",
  "--first-iters",
  "12",
  "--trace",
  "t.json",
];

async function trace(dir: string) {
  return JSON.parse(await Deno.readTextFile(join(dir, "t.json")));
}

Deno.test("a device lost at iterations 5 and 19 (one in each scale) resumes each time on a new device and ends on the uninterrupted run's final loss within 1e-4", async () => {
  await inTempDir(async (dir) => {
    const plain = await runCli(dir, [...RUN, "-o", "a.png"]);
    assert.equal(plain.code, 0, plain.stderr);
    const want = (await trace(dir)).iterations.at(-1).loss;
    const lost = await runCli(dir, [...RUN, "-o", "b.png"], {
      STYLIZE_FAULT: "lose-device@5,19",
    });
    assert.equal(lost.code, 0, lost.stderr);
    const t = await trace(dir);
    const got = t.iterations.at(-1).loss;
    assert.ok(relErr(got, want) <= 1e-4, `${got} vs ${want}`);
    assert.equal(t.gpu.devicesLost, 2);
    const lines = lost.stderr.split("\n").filter((l) => /device lost/.test(l));
    assert.equal(lines.length, 2, lost.stderr);
    for (const l of lines) {
      assert.match(l, /^GPU device lost \(unknown\): .*; resumed on a new device at iteration \d+/);
    }
    // Each scale's records run 1…12 once, in order, whatever was redone.
    for (const s of [0, 1]) {
      const is = t.iterations.filter((r: { scale: number }) => r.scale === s).map((
        r: { i: number },
      ) => r.i);
      assert.deepEqual(is, Array.from({ length: 12 }, (_, k) => k));
    }
  });
});

Deno.test("a device lost three times ends the run with the last good image written, one line, exit 2", async () => {
  await inTempDir(async (dir) => {
    const r = await runCli(dir, [...RUN, "-o", "c.png", "-q"], {
      STYLIZE_FAULT: "lose-device@3,6,9",
    });
    assert.equal(r.code, 2, r.stderr);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, r.stderr);
    assert.match(
      lines[0],
      /^stylize: GPU device lost .*3 devices lost.*wrote the last good image to c\.png$/,
    );
    const img = await readImage(join(dir, "c.png"));
    assert.deepEqual([img.width, img.height], [64, 43]);
  });
});

Deno.test("STYLIZE_FAULT combines: a device lost and memory capped, the run still lands where the plain one does", async () => {
  await inTempDir(async (dir) => {
    const args = [
      ...RUN.slice(0, 2),
      "--size",
      "320",
      "--min-size",
      "320",
      "--style-size",
      "128",
      "--iters",
      "6",
      "--trace",
      "t.json",
    ];
    const plain = await runCli(dir, [...args, "-o", "a.png", "-q"]);
    assert.equal(plain.code, 0, plain.stderr);
    const t0 = await trace(dir);
    const cap = Math.round(0.7 * t0.gpu.peakBytes);
    const r = await runCli(dir, [...args, "-o", "b.png"], {
      STYLIZE_FAULT: `lose-device@4;oom-above=${cap}`,
    });
    assert.equal(r.code, 0, r.stderr);
    const t = await trace(dir);
    assert.ok(t.gpu.peakBytes <= cap, `${t.gpu.peakBytes} > ${cap}`);
    assert.match(r.stderr, /retrying with \d+ tiles/);
    assert.match(r.stderr, /resumed on a new device at iteration/);
    const [a, b] = [t0.iterations.at(-1).loss, t.iterations.at(-1).loss];
    assert.ok(relErr(b, a) <= 1e-4, `${b} vs ${a}`);
  });
});

for (const size of [1024, 2048]) {
  Deno.test(`--max-gpu-memory at ${size} px: the run splits into tiles and its trace's peak stays under the cap`, async () => {
    await inTempDir(async (dir) => {
      const cap = size === 1024 ? "400M" : "900M";
      const r = await runCli(dir, [
        join(EX, "chelsea.png"),
        join(EX, "starry_night.jpg"),
        "--size",
        String(size),
        "--min-size",
        String(size),
        "--style-size",
        "256",
        "--iters",
        "1",
        "--max-gpu-memory",
        cap,
        "--trace",
        "t.json",
        "-q",
      ]);
      assert.equal(r.code, 0, r.stderr);
      const t = await trace(dir);
      assert.ok(t.gpu.peakBytes <= parseBytes("", cap), `peak ${t.gpu.peakBytes} over ${cap}`);
      assert.ok(t.scales[0].tiles > 1, `${t.scales[0].tiles} tiles`);
    });
  });
}
