import assert from "node:assert/strict";
import { join } from "node:path";
import { Program } from "../src/engine/gpu/scheduler.ts";
import {
  conv2d,
  conv2dBackwardStrided,
  type ConvShape,
  packStridedKernel,
} from "../src/engine/ops/conv.ts";
import {
  DEFAULT_TILES,
  defaultTiles,
  GPU_TILES,
  planeStride,
  type TileTable,
  view,
  WIDE_TILES,
} from "../src/engine/ops/context.ts";
import { gram, gramBackward, gramGeometry } from "../src/engine/ops/gram.ts";
import { createEngine } from "../src/deno/stylizer.ts";
import {
  loadTunedTiles,
  saveTunedTiles,
  TILES_FILE_VERSION,
  tunedTilesPath,
} from "../src/deno/tiles_cache.ts";
import { CANDIDATES, TUNE_MARGIN, tuneTiles } from "../src/engine/model/tune.ts";
import { randomFloats, readFloats, relL2, runProgram, testContext, testGpu } from "./helpers.ts";
import { weightsPath } from "./data.ts";

const WEIGHTS = await weightsPath();

/** Runs one launch of `family`'s op with `tiles` on fixed random inputs; returns its output. */
async function runFamily(family: keyof TileTable, tiles: TileTable): Promise<Float32Array> {
  const { gpu, pool, ctx, scope } = await testContext(tiles);
  const up = (n: number, seed: number) => ctx.upload(scope, randomFloats(n, seed), "in");
  const prog = new Program(gpu.device);
  const p = planeStride(5, 7);
  let out: GPUBuffer;
  let n: number;
  if (family === "pointwise" || family === "gramBackward") {
    // 1×1 with accumulate and mask on padded planes (32 channels in and out).
    out = up(32 * p, 1);
    n = 32 * p;
    const f = view(up(32 * p, 2), 0, p);
    if (family === "gramBackward") {
      await gramBackward(ctx, scope, prog, {
        label: "t",
        c: 32,
        h: 5,
        w: 7,
        f,
        dgram: up(32 * 32, 3),
        grad: view(out, 0, p),
        maskOut: f,
      });
    } else {
      await conv2d(ctx, scope, prog, {
        label: "t",
        shape: { cin: 32, cout: 32, h: 5, w: 7, kh: 1, kw: 1, stride: 1, pad: 0 },
        x: f,
        weights: up(32 * 32, 3),
        bias: up(32, 4),
        out: view(out, 0, p),
        relu: true,
      });
    }
  } else if (family === "conv3x3" || family === "conv3x3Gradient" || family === "conv3x3Strided") {
    const s: ConvShape = family === "conv3x3Strided"
      ? { cin: 3, cout: 32, h: 12, w: 23, kh: 3, kw: 3, stride: 2, pad: 0 }
      : { cin: 8, cout: 32, h: 9, w: 13, kh: 3, kw: 3, stride: 1, pad: 1 };
    const oh = Math.floor((s.h + 2 * s.pad - 3) / s.stride) + 1;
    const ow = Math.floor((s.w + 2 * s.pad - 3) / s.stride) + 1;
    n = s.cout * oh * ow;
    out = scope.floats(n, "out");
    await conv2d(ctx, scope, prog, {
      label: "t",
      shape: s,
      x: view(up(s.cin * s.h * s.w, 5)),
      weights: up(9 * s.cin * s.cout, 6),
      bias: up(s.cout, 7),
      out: view(out),
      relu: true,
      use: family === "conv3x3Gradient" ? "gradient" : "forward",
    });
  } else if (family === "stridedBackward") {
    const s: ConvShape = { cin: 3, cout: 16, h: 13, w: 70, kh: 3, kw: 3, stride: 2, pad: 0 };
    n = 3 * 13 * 70;
    out = scope.floats(n, "dx");
    await conv2dBackwardStrided(ctx, scope, prog, {
      label: "t",
      shape: s,
      dy: view(up(16 * 6 * 34, 8)),
      packed: ctx.upload(scope, packStridedKernel(randomFloats(9 * 3 * 16, 9), 3, 16), "wb"),
      dx: view(out),
    });
  } else if (family === "gram") {
    n = 16 * 16;
    out = scope.floats(n, "g");
    await gram(ctx, scope, prog, {
      label: "t",
      c: 16,
      npix: 23 * 31, // several pixel chunks for every candidate CHUNK but 1024
      f: view(up(16 * 23 * 31, 10)),
      scratch: scope.floats(gramGeometry(ctx, 16, 23 * 31).scratch, "scratch"),
      gram: view(out),
    });
  } else {
    throw new Error(`no test launch for ${family}`);
  }
  runProgram(gpu.device, prog);
  const got = await readFloats(gpu.device, out, 0, n);
  scope.dispose();
  ctx.destroy();
  pool.destroy();
  return got;
}

for (const [family, tiles] of Object.entries(CANDIDATES) as [keyof TileTable, unknown[]][]) {
  Deno.test(`every tune candidate of ${family} computes what the default tile does`, async () => {
    const want = await runFamily(family, DEFAULT_TILES);
    for (const t of tiles) {
      const got = await runFamily(family, { ...DEFAULT_TILES, [family]: t });
      const err = relL2(got, want);
      assert.ok(err < 1e-6, `${JSON.stringify(t)}: rel err ${err}`);
    }
  });
}

Deno.test("hardware GPUs start from GPU_TILES and lavapipe at 16 lanes from WIDE_TILES, whose every entry the candidate test above covers", () => {
  assert.equal(defaultTiles(true), DEFAULT_TILES);
  assert.equal(defaultTiles(true, 8), DEFAULT_TILES);
  assert.equal(defaultTiles(true, 16), WIDE_TILES);
  assert.equal(defaultTiles(false), GPU_TILES);
  assert.equal(defaultTiles(false, 16), GPU_TILES);
  const candidates = CANDIDATES as Record<string, unknown[]>;
  for (const table of [GPU_TILES, WIDE_TILES]) {
    for (const [family, tile] of Object.entries(table)) {
      const tried = [DEFAULT_TILES[family as keyof typeof DEFAULT_TILES], ...candidates[family]];
      assert.ok(
        tried.some((t) => JSON.stringify(t) === JSON.stringify(tile)),
        `${family} ${JSON.stringify(tile)} is not a tune candidate`,
      );
    }
  }
});

Deno.test("tuneTiles times each candidate and keeps the default unless beaten by the margin", async () => {
  const engine = await createEngine({ weights: WEIGHTS, tilesFile: false });
  try {
    const lines: string[] = [];
    const results = await tuneTiles(engine, {
      h: 48,
      w: 64,
      rounds: 1,
      candidates: {
        pointwise: [{ TMV: 4, TN: 4, WG: 8 }],
        gram: [{ T: 8, WG: 64, CHUNK: 512, BIG: 0 }],
      },
      onProgress: (s) => lines.push(s),
    });
    assert.deepEqual(results.map((r) => r.family), ["pointwise", "gram"]);
    assert.equal(lines.length, 4);
    for (const r of results) {
      assert.deepEqual(r.times[0].tile, engine.ctx.tiles[r.family]);
      assert.equal(r.times.length, 2);
      for (const t of r.times) assert.ok(t.ms !== null && t.ms > 0, JSON.stringify(t));
      const chosen = r.times.find((t) => t.tile === r.chosen)!;
      assert.equal(r.changed, chosen !== r.times[0]);
      // Changed only when faster than the default by more than the margin.
      if (r.changed) assert.ok(chosen.ms! < (1 - TUNE_MARGIN) * r.times[0].ms!);
      else assert.ok(r.times[1].ms! >= (1 - TUNE_MARGIN) * r.times[0].ms!);
    }
  } finally {
    engine.dispose();
  }
});

Deno.test("tuned tiles round-trip through their cache file and createEngine uses them", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const gpu = await testGpu();
    const path = (await tunedTilesPath(gpu.adapterKey, (k) =>
      k === "STYLIZE_CACHE_DIR" ? dir : undefined))!;
    assert.ok(path.startsWith(join(dir, "tiles")), path);
    assert.deepEqual(await loadTunedTiles(path, gpu.adapterKey), { reason: "no tuned tiles" });
    const tiles = { pointwise: { TMV: 2, TN: 2, WG: 64 } };
    const file = {
      version: TILES_FILE_VERSION,
      adapterKey: gpu.adapterKey,
      adapter: gpu.adapterName,
      size: [48, 64] as [number, number],
      date: new Date().toISOString(),
      tiles,
    };
    await saveTunedTiles(path, file);
    assert.deepEqual(await loadTunedTiles(path, gpu.adapterKey), { tiles });
    assert.deepEqual(await loadTunedTiles(path, "another|gpu"), {
      reason: "tuned for another adapter",
    });
    const engine = await createEngine({ weights: WEIGHTS, tilesFile: path });
    assert.equal(engine.tilesSource, path);
    assert.deepEqual(engine.ctx.tiles.pointwise, tiles.pointwise);
    assert.deepEqual(engine.ctx.tiles.gram, defaultTiles(gpu.isFallback, gpu.cpuLanes).gram);
    engine.dispose();
    // A malformed or stale file is ignored, with the reason reported.
    for (const bad of [{ ...file, version: 0 }, { ...file, tiles: { gram: { T: "8" } } }]) {
      await Deno.writeTextFile(path, JSON.stringify(bad));
      const said: string[] = [];
      const e = await createEngine({
        weights: WEIGHTS,
        tilesFile: path,
        onProgress: (s) => said.push(s),
      });
      assert.equal(e.tilesSource, "default");
      assert.deepEqual(e.ctx.tiles, defaultTiles(gpu.isFallback, gpu.cpuLanes));
      assert.equal(said.length, 1);
      assert.match(
        said[0],
        new RegExp(`^ignoring .*: (not version ${TILES_FILE_VERSION}|malformed entry "gram")`),
      );
      e.dispose();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
