/**
 * Settings that travel with the image: PNG tEXt chunks (src/engine/image/
 * png_text.ts), the run record (src/engine/model/run_record.ts), the CLI's
 * PNG carrying its settings and `--settings-from FILE.png` reusing them, the
 * command line's own flags overriding the file's.
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseRun } from "../src/deno/cli.ts";
import { decodeImage, encodeImage, writeImage } from "../src/deno/image/mod.ts";
import { cliRecord, readSettingsPng } from "../src/deno/settings_png.ts";
import { UserError } from "../src/engine/errors.ts";
import { crc32, insertPngText, readPngText } from "../src/engine/image/png_text.ts";
import type { RgbImage } from "../src/engine/image/types.ts";
import { DEFAULT_CONFIG } from "../src/engine/model/optimize.ts";
import {
  asciiJson,
  parseRunRecord,
  RECORD_KEYWORD,
  type RunRecord,
} from "../src/engine/model/run_record.ts";
import { weightsPath } from "./data.ts";
import { runCli } from "./cli_run.ts";

const WEIGHTS = await weightsPath();

/** A small image that is not flat. */
function pattern(width: number, height: number, phase = 0): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + phase * 31 + (i >> 5)) & 255;
  return { width, height, data };
}

/** The chunk types of a PNG, in order. */
function chunkTypes(png: Uint8Array): string[] {
  const view = new DataView(png.buffer, png.byteOffset);
  const out: string[] = [];
  for (let o = 8; o + 8 <= png.length; o += 12 + view.getUint32(o)) {
    out.push(String.fromCharCode(...png.subarray(o + 4, o + 8)));
  }
  return out;
}

Deno.test("png tEXt: crc32 is PNG's (IEND's known checksum)", () => {
  assert.equal(crc32(new TextEncoder().encode("IEND")), 0xae426082);
});

Deno.test("png tEXt: inserted after IHDR, read back, and the pixels decode unchanged", async () => {
  const img = pattern(20, 10);
  const png = await encodeImage(img, "png");
  const text = asciiJson({ a: 1, name: "Bildschön ☃.png" });
  const out = insertPngText(png, "stylize", text);
  assert.deepEqual(chunkTypes(out).slice(0, 2), ["IHDR", "tEXt"]);
  assert.equal(readPngText(out, "stylize"), text);
  assert.equal(readPngText(out, "other"), null);
  assert.equal(readPngText(png, "stylize"), null);
  assert.deepEqual(await decodeImage(out, "out.png"), img);
  assert.deepEqual(JSON.parse(readPngText(out, "stylize")!), { a: 1, name: "Bildschön ☃.png" });
});

Deno.test("png tEXt: a second insert of a keyword replaces the first; a bad CRC is not read", async () => {
  const png = await encodeImage(pattern(8, 8), "png");
  const twice = insertPngText(insertPngText(png, "stylize", "one"), "stylize", "two");
  // (ImageScript writes tEXt chunks of its own: one more than it wrote.)
  const texts = (b: Uint8Array) => chunkTypes(b).filter((t) => t === "tEXt").length;
  assert.equal(texts(twice), texts(png) + 1);
  assert.equal(readPngText(twice, "stylize"), "two");
  const both = insertPngText(insertPngText(png, "Comment", "hi"), "stylize", "x");
  assert.equal(readPngText(both, "Comment"), "hi");
  const damaged = both.slice();
  damaged[8 + 25 + 8 + 8] ^= 1; // the text ("x") of the first tEXt chunk, after IHDR
  assert.equal(readPngText(damaged, "stylize"), null);
});

Deno.test("png tEXt: not a PNG, a bad keyword or non-Latin-1 text are refused", async () => {
  const png = await encodeImage(pattern(4, 4), "png");
  assert.throws(() => insertPngText(new Uint8Array([1, 2, 3]), "k", "v"), RangeError);
  assert.throws(() => insertPngText(png, "", "v"), RangeError);
  assert.throws(() => insertPngText(png, "a".repeat(80), "v"), RangeError);
  assert.throws(() => insertPngText(png, "k", "☃"), RangeError);
  assert.equal(readPngText(new Uint8Array([0xff, 0xd8, 0xff]), "k"), null);
});

/** The record of `flags` as the CLI would write it. */
function recordOf(flags: string[]): RunRecord {
  return cliRecord(parseRun(flags), { scales: [[32, 24]], steps: 2 });
}

Deno.test("run record: asciiJson is ASCII and parses back; every field is checked", () => {
  const r = recordOf(["chelsea ☃.png", "starry.png", "--strength", "2"]);
  const text = asciiJson(r);
  assert.match(text, /^[\x20-\x7e]*$/);
  assert.deepEqual(parseRunRecord(text, "x.png"), r);
  const bad: [Partial<Record<keyof RunRecord, unknown>>, RegExp][] = [
    [{ version: 2 }, /"version" is not valid/],
    [{ size: 8 }, /"size" is not valid \(8\)/],
    [{ styleWeights: [1, "a"] }, /"styleWeights" is not valid/],
    [{ styleLayers: ["conv9"] }, /"styleLayers" is not valid/],
    [{ seed: undefined }, /"seed" is missing/],
    [{ styleWeights: [1, 2] }, /one style weight per style layer/],
  ];
  for (const [change, message] of bad) {
    assert.throws(
      () => parseRunRecord(JSON.stringify({ ...r, ...change }), "x.png"),
      (e) => e instanceof UserError && /^x\.png: /.test(e.message) && message.test(e.message),
      JSON.stringify(change),
    );
  }
  assert.throws(() => parseRunRecord("{", "x.png"), /x\.png: its stylize settings are not JSON/);
});

Deno.test("--settings-from: a record's flags give the run that made it", () => {
  const flagSets = [
    ["c.png", "s.png"],
    ["c.png", "s.png", "t.png", "--size", "300", "--style-size", "200", "--min-size", "100"],
    ["c.png", "s.png", "--iters", "50", "--first-iters", "70", "--lr-decay-at", "20", "--lr", "3"],
    ["c.png", "s.png", "--strength", "2.5", "--style-weights", "1,2,3,4", "--tv-weight", "0"],
    ["c.png", "s.png", "t.png", "--style-blend", "1,3", "--pooling", "avg", "--avg-decay", "0.9"],
    ["c.png", "s.png", "--init", "random", "--seed", "7", "--original-colors"],
    [
      "c.png",
      "s.png",
      "--content-layer",
      "fire3",
      "--style-layers",
      "fire2,fire4",
      "--style-weights",
      "1,2",
    ],
    ["c.png", "s.png", "--init", "start.png", "--reference-pixels", "0"],
  ];
  for (const flags of flagSets) {
    // Output, stages, trace, weights and quiet are not settings of the image.
    assert.deepEqual(parseRun([], recordOf(flags)), parseRun(flags), flags.join(" "));
  }
});

Deno.test("--settings-from: flags given on the command line override the file's", () => {
  const r = recordOf(["c.png", "s.png", "--iters", "50", "--strength", "2", "--seed", "3"]);
  const o = parseRun(["other.png", "style.png", "--iters", "10", "--strength", "3"], r);
  assert.deepEqual([o.contents, o.styles], ["other.png", ["style.png"]]);
  assert.equal(o.config.iters, 10);
  // The file's learning-rate drop was the default one, so it follows the new --iters.
  assert.equal(o.config.decayAt, 9);
  assert.deepEqual(o.config.styleWeights, DEFAULT_CONFIG.styleWeights.map((w) => w * 3));
  assert.equal(o.seed, 3);
});

/** `deno task stylize ARGS` in `cwd`. */
const stylize = (cwd: string, args: string[]) => runCli(cwd, args);

Deno.test("--settings-from: a PNG without stylize settings, or no file, is one line and exit 2", async () => {
  const dir = await Deno.makeTempDir({ prefix: "stylize-settings-" });
  try {
    await writeImage(join(dir, "plain.png"), pattern(40, 30));
    for (
      const [file, message] of [
        ["plain.png", /^stylize: plain\.png: no stylize settings in it \(--settings-from/],
        ["missing.png", /^stylize: missing\.png: no such file$/],
      ] as const
    ) {
      const r = await stylize(dir, ["--settings-from", file, "-o", "out.png", "--quiet"]);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr.trim(), message);
      assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["plain.png"]);
    }
    await assert.rejects(readSettingsPng(join(dir, "plain.png")), UserError);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "--settings-from: the CLI's PNG carries its settings, and a run from them reuses them",
  ignore: !(() => {
    try {
      return Deno.statSync(WEIGHTS).isFile;
    } catch {
      return false;
    }
  })(),
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "stylize-settings-" });
    try {
      await writeImage(join(dir, "content.png"), pattern(40, 30));
      await writeImage(join(dir, "style.png"), pattern(30, 40, 5));
      const first = await stylize(dir, [
        "content.png",
        "style.png",
        "-o",
        "out.png",
        "--size",
        "32",
        "--iters",
        "2",
        "--strength",
        "2",
        "--init",
        "random",
        "--seed",
        "5",
        "--quiet",
      ]);
      assert.equal(first.code, 0, first.stderr);
      const record = await readSettingsPng(join(dir, "out.png"));
      assert.deepEqual(
        [record.content, record.styles, record.size, record.iters, record.strength, record.seed],
        ["content.png", ["style.png"], 32, 2, 2, 5],
      );
      assert.deepEqual([record.scales, record.steps, record.masks], [[[32, 24]], 2, false]);
      assert.deepEqual(record.styleWeights, DEFAULT_CONFIG.styleWeights);
      // Again from the PNG alone (its content and style names), one flag overridden.
      const again = await stylize(dir, [
        "--settings-from",
        "out.png",
        "--iters",
        "3",
        "-o",
        "again.png",
        "--trace",
        "t.json",
        "--quiet",
      ]);
      assert.equal(again.code, 0, again.stderr);
      const trace = JSON.parse(await Deno.readTextFile(join(dir, "t.json")));
      assert.deepEqual(
        [trace.config.content, trace.config.size, trace.config.iters, trace.config.init],
        ["content.png", [24, 32], 3, "random"],
      );
      assert.equal(trace.config.seed, 5);
      assert.deepEqual(trace.config.styleWeights, DEFAULT_CONFIG.styleWeights.map((w) => w * 2));
      const second = await readSettingsPng(join(dir, "again.png"));
      assert.deepEqual([second.iters, second.firstIters, second.steps], [3, 3, 3]);
      assert.deepEqual(
        { ...second, iters: 2, firstIters: 2, steps: 2, decayAt: record.decayAt },
        record,
      );
      assert.ok(readPngText(await Deno.readFile(join(dir, "again.png")), RECORD_KEYWORD));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
