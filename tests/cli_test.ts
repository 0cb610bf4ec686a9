/**
 * End-to-end tests of the command line (src/deno/cli.ts): each test spawns the CLI
 * the way `deno task stylize` does, in a fresh temporary directory, on small
 * images made at test time (32 px runs, a few iterations, so the file stays fast
 * on a CPU adapter). They cover the "Must show" list: every bad input
 * ends in exit code 2 with exactly one `stylize:` line on stderr and no file
 * left; SIGINT saves the current image; `--save-every` stages and contact sheet;
 * the trace JSON schema.
 *
 * Run: deno test -A tests/cli_test.ts (the weights: see tests/data.ts).
 */
import assert from "node:assert/strict";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { readImage, writeImage } from "../src/deno/image/mod.ts";
import { originalColors, resize, toTensor } from "../src/engine/image/mod.ts";
import { createEngine } from "../src/deno/stylizer.ts";
import type { Engine, LossSpec, Tensor } from "../src/engine/model/stylizer.ts";
import { DEFAULT_CONFIG } from "../src/engine/model/optimize.ts";
import type { RgbImage } from "../src/engine/image/types.ts";
import { FILE_MODES_NOTE, obeyingFileModes } from "./helpers.ts";
import { testImage, weightsPath } from "./data.ts";
import { TILES_FILE_VERSION } from "../src/deno/tiles_cache.ts";
import { loopRate } from "../src/engine/model/optimize.ts";
import { cpuDriver } from "../src/deno/driver.ts";
import { exists, PERMS } from "./cli_run.ts";
import { concatBytes, makeChunk, PNG_SIGNATURE } from "../src/engine/image/png_text.ts";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const CLI = join(REPO, "src", "deno", "cli.ts");
const CONFIG = join(REPO, "deno.json");
const WEIGHTS = await weightsPath();

/** Flags that keep a real run small: an image of longer side 32 still reaches fire9. */
const SMALL = ["--size", "32", "--style-size", "32"];

/**
 * The longest a CLI run here may take before it is killed. A run compiles
 * every kernel it uses when Mesa's shader cache is cold: the 32-px runs below
 * took 47–50 s from an empty cache on the 2-core CI machine (lavapipe,
 * 512-bit vectors; 14 s for the second run, 2 s once warm), and whichever
 * test runs first pays that. Four times the cold run leaves room for a
 * slower or busier machine.
 */
const COLD_RUN_MS = 50_000;
const RUN_TIMEOUT_MS = 4 * COLD_RUN_MS;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * A cache directory of this file's own for the CLI runs, so what a user
 * cached (tuned tiles above all) never steers them; Mesa's shader cache is
 * the one this test process uses (the driver plan's), so the runs start warm
 * after the first.
 */
const CLI_CACHE = Deno.makeTempDirSync({ prefix: "stylize-cli-cache-" });
globalThis.addEventListener("unload", () => Deno.removeSync(CLI_CACHE, { recursive: true }));
const MESA_CACHE = cpuDriver().cacheDir;

function cliEnv(extra: Record<string, string> = {}): Record<string, string> {
  return {
    STYLIZE_WEIGHTS: WEIGHTS,
    STYLIZE_CACHE_DIR: CLI_CACHE,
    ...(MESA_CACHE ? { MESA_SHADER_CACHE_DIR: MESA_CACHE } : {}),
    XDG_RUNTIME_DIR: "/tmp",
    NO_COLOR: "1",
    ...extra,
  };
}

/**
 * The CLI as a command; with `obeyModes`, one that obeys file modes even as
 * root (see {@link obeyingFileModes}).
 */
function cliCommand(
  cwd: string,
  args: string[],
  env: Record<string, string>,
  stdio: Pick<Deno.CommandOptions, "stdout" | "stderr">,
  obeyModes = false,
): Deno.Command {
  const argv = [Deno.execPath(), "run", "--config", CONFIG, ...PERMS, CLI, ...args];
  const [cmd, ...rest] = obeyModes ? obeyingFileModes(argv) : argv;
  return new Deno.Command(cmd, {
    args: rest,
    cwd,
    env: cliEnv(env),
    stdin: "null",
    ...stdio,
  });
}

/** Runs the CLI in `cwd` and waits for it (killed after `timeoutMs`). */
async function stylize(
  cwd: string,
  args: string[],
  opts: { env?: Record<string, string>; timeoutMs?: number; obeyModes?: boolean } = {},
): Promise<Result & { ms: number }> {
  const t0 = performance.now();
  const child = cliCommand(
    cwd,
    args,
    opts.env ?? {},
    { stdout: "piped", stderr: "piped" },
    opts.obeyModes,
  ).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, opts.timeoutMs ?? RUN_TIMEOUT_MS);
  try {
    const out = await child.output();
    const dec = new TextDecoder();
    return {
      code: out.code,
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr),
      ms: performance.now() - t0,
    };
  } finally {
    clearTimeout(timer);
  }
}

/** A fresh temporary directory for `fn`, removed afterwards. */
async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "stylize-cli-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.chmod(dir, 0o755).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
}

function listDir(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

/** A smooth colour gradient (deterministic, not flat, so Gram matrices are non-trivial). */
function gradient(width: number, height: number, phase = 0): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = (x * 255 / (width - 1) + phase) & 255;
      data[i + 1] = (y * 255 / (height - 1) + 2 * phase) & 255;
      data[i + 2] = ((x + y) * 4 + 3 * phase) & 255;
    }
  }
  return { width, height, data };
}

/** Writes content.png (40×30) and style.png (30×40) into `dir`. */
async function makeInputs(dir: string): Promise<void> {
  await writeImage(join(dir, "content.png"), gradient(40, 30));
  await writeImage(join(dir, "style.png"), gradient(30, 40, 77));
}

const INPUTS = ["content.png", "style.png"];

/** A well-formed PNG header (signature, IHDR, IEND) claiming `width × height` RGB pixels. */
function pngHeaderOnly(width: number, height: number): Uint8Array {
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr.set([8, 2, 0, 0, 0], 8);
  return concatBytes([
    new Uint8Array(PNG_SIGNATURE),
    makeChunk("IHDR", ihdr),
    makeChunk("IEND", new Uint8Array()),
  ]);
}

/**
 * Runs the CLI with `args` (plus --quiet) in `dir` and checks the bad-input
 * contract: exit code 2, exactly one stderr line starting with "stylize:" that
 * matches `problem`, no stack trace or Deno error, nothing on stdout, and the
 * directory holds exactly what it held before (no output, no temp file).
 */
async function expectUserError(
  dir: string,
  args: string[],
  problem: RegExp,
  env: Record<string, string> = {},
  obeyModes = false,
): Promise<string> {
  const before = listDir(dir);
  const r = await stylize(dir, [...args, "--quiet"], { env, obeyModes });
  const lines = r.stderr.split("\n").filter((l) => l.trim() !== "");
  const context = `args ${JSON.stringify(args)}\nexit ${r.code}\nstderr:\n${r.stderr}`;
  assert.equal(r.code, 2, `expected exit code 2; ${context}`);
  assert.equal(lines.length, 1, `expected exactly one stderr line; ${context}`);
  assert.match(lines[0], /^stylize: \S/, context);
  assert.match(lines[0], problem, context);
  assert.doesNotMatch(r.stderr, /^\s+at /m, `stack trace on stderr; ${context}`);
  assert.doesNotMatch(r.stderr, /^error:|Uncaught|internal error/im, context);
  assert.equal(r.stdout, "", `unexpected stdout; ${context}`);
  assert.deepEqual(listDir(dir), before, `files appeared or vanished; ${context}`);
  return lines[0];
}

/** Runs a short successful stylize into out.png and checks the 32×24 result. */
async function expectImage(dir: string, args: string[]): Promise<void> {
  const r = await stylize(dir, [...args, "-o", "out.png", ...SMALL, "--iters", "2", "--quiet"]);
  assert.equal(r.code, 0, r.stderr);
  const img = await readImage(join(dir, "out.png"));
  assert.deepEqual([img.width, img.height], [32, 24]);
}

function test(name: string, fn: (dir: string) => Promise<void>): void {
  Deno.test({
    name,
    fn: () =>
      inTempDir(async (dir) => {
        await makeInputs(dir);
        await fn(dir);
      }),
  });
}

// ---------------------------------------------------------------------------
// --help

test("--help exits 0 and lists every flag of the synopsis", async (dir) => {
  const r = await stylize(dir, ["--help"]);
  assert.equal(r.code, 0, r.stderr);
  const flags = [
    "-o",
    "--size",
    "--style-size",
    "--iters",
    "--lr",
    "--lr-decay-at",
    "--content-weight",
    "--style-weights",
    "--tv-weight",
    "--content-layer",
    "--style-layers",
    "--init",
    "--seed",
    "--save-every",
    "--trace",
    "--weights",
    "--quiet",
    "--style-blend",
    "--pooling",
    "--strength",
    "--min-size",
    "--first-iters",
    "--reference-pixels",
    "--original-colors",
    "--avg-decay",
  ];
  for (const f of flags) {
    const re = new RegExp(`(^|[\\s,])${f.replace(/-/g, "\\-")}(?![\\w-])`, "m");
    assert.match(r.stdout, re, `--help does not list ${f}`);
  }
  assert.deepEqual(listDir(dir), INPUTS);
});

test("--help lists --pooling with its values and its default, max", async (dir) => {
  const r = await stylize(dir, ["--help"]);
  assert.equal(r.code, 0, r.stderr);
  const at = r.stdout.indexOf("--pooling max|avg");
  assert.ok(at >= 0, "--help does not list --pooling max|avg");
  const entry = r.stdout.slice(at).split(/\n(?=\s+-)/)[0];
  assert.match(entry, /\(default max\)/, entry);
});

// ---------------------------------------------------------------------------
// Normal runs

test("a run writes a decodable PNG whose longer side is --size and leaves no temp files", async (dir) => {
  const r = await stylize(dir, [
    "content.png",
    "style.png",
    "-o",
    "out.png",
    ...SMALL,
    "--iters",
    "2",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(listDir(dir), [...INPUTS, "out.png"].sort());
  const img = await readImage(join(dir, "out.png"));
  assert.equal(Math.max(img.width, img.height), 32);
  assert.deepEqual([img.width, img.height], [32, 24]);
  assert.match(r.stderr, /wrote \S*\/out\.png/);
});

test("a run with -o OUT.jpg writes a decodable JPEG of the requested size", async (dir) => {
  const r = await stylize(dir, [
    "content.png",
    "style.png",
    "-o",
    "out.jpg",
    ...SMALL,
    "--iters",
    "2",
    "--quiet",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "", "--quiet must print nothing");
  assert.deepEqual(listDir(dir), [...INPUTS, "out.jpg"].sort());
  const bytes = Deno.readFileSync(join(dir, "out.jpg"));
  assert.deepEqual([...bytes.subarray(0, 2)], [0xff, 0xd8], "not a JPEG");
  const img = await readImage(join(dir, "out.jpg"));
  assert.deepEqual([img.width, img.height], [32, 24]);
});

// ---------------------------------------------------------------------------
// tune

test("tune: a bad --size or --rounds → exit 2, one line", async (dir) => {
  await expectUserError(dir, ["tune", "--size", "8x8"], /--size: "8x8"/);
  await expectUserError(dir, ["tune", "--rounds", "0"], /--rounds/);
  await expectUserError(dir, ["tune", "--bogus"], /bogus/);
});

test("tune --rounds 1 writes the adapter's tiles file and --reset removes it", async (dir) => {
  const env = { STYLIZE_CACHE_DIR: join(dir, "cache") };
  // tune compiles every candidate tile's kernels: ≈ 6 cold runs' worth.
  const r = await stylize(dir, ["tune", "--size", "48x64", "--rounds", "1", "-q"], {
    env,
    timeoutMs: 6 * RUN_TIMEOUT_MS,
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stderr, "");
  const path = /^wrote (.+\.json)$/m.exec(r.stdout)?.[1] ?? "";
  assert.ok(path.startsWith(join(dir, "cache", "tiles")), r.stdout);
  const file = JSON.parse(await Deno.readTextFile(path));
  assert.equal(file.version, TILES_FILE_VERSION);
  assert.equal(typeof file.tiles, "object");
  // One line per tuned family, each naming its tile and the default's time.
  assert.equal(r.stdout.split("\n").filter((l) => / ms \(default /.test(l)).length, 7);
  const reset = await stylize(dir, ["tune", "--reset", "-q"], { env });
  assert.equal(reset.code, 0, reset.stderr);
  assert.match(reset.stdout, /^removed tuned tiles/);
  assert.equal(await Deno.stat(path).catch(() => null), null);
});

// ---------------------------------------------------------------------------
// Bad input: exit 2, one line, no file

test("missing content file → exit 2, one line naming it", async (dir) => {
  await expectUserError(
    dir,
    ["nope.png", "style.png", "-o", "out.png", ...SMALL],
    /nope\.png.*(no such file|not found|does not exist)/i,
  );
});

test(`unreadable content file (chmod 000) → exit 2, one line${FILE_MODES_NOTE}`, async (dir) => {
  await Deno.chmod(join(dir, "content.png"), 0o000);
  await expectUserError(
    dir,
    ["content.png", "style.png", "-o", "out.png", ...SMALL],
    /content\.png.*(cannot read|permission)/i,
    {},
    true,
  );
});

test("a text file named x.png → exit 2, 'not a PNG or JPEG'", async (dir) => {
  await Deno.writeTextFile(join(dir, "x.png"), "this is not an image\n");
  await expectUserError(
    dir,
    ["x.png", "style.png", "-o", "out.png", ...SMALL],
    /x\.png.*not a PNG or JPEG/i,
  );
});

test("truncated JPEG (first half of a real one) → exit 2, 'truncated'", async (dir) => {
  const jpeg = Deno.readFileSync(testImage("hubble_deep_field.jpg"));
  Deno.writeFileSync(join(dir, "half.jpg"), jpeg.subarray(0, jpeg.length >> 1));
  await expectUserError(
    dir,
    ["half.jpg", "style.png", "-o", "out.png", ...SMALL],
    /half\.jpg.*truncated/i,
  );
});

test("zero-byte file → exit 2, 'empty'", async (dir) => {
  Deno.writeFileSync(join(dir, "empty.jpg"), new Uint8Array());
  await expectUserError(
    dir,
    ["content.png", "empty.jpg", "-o", "out.png", ...SMALL],
    /empty\.jpg.*empty/i,
  );
});

test("PNG header claiming 60000×60000 → exit 2 at the decoder's pixel limit", async (dir) => {
  Deno.writeFileSync(join(dir, "huge.png"), pngHeaderOnly(60000, 60000));
  await expectUserError(
    dir,
    ["huge.png", "style.png", "-o", "out.png", ...SMALL],
    /huge\.png.*60000x60000.*limit/i,
  );
});

test("--size 2048 runs split into tiles: the image has the requested size, no buffer or binding over 128 MiB", async (dir) => {
  const r = await stylize(dir, [
    ...INPUTS,
    "-o",
    "out.png",
    "--size",
    "2048",
    "--min-size",
    "2048",
    "--style-size",
    "128",
    "--iters",
    "2",
    "--trace",
    "t.json",
    "-q",
  ]);
  assert.equal(r.code, 0, r.stderr);
  const img = await readImage(join(dir, "out.png"));
  assert.deepEqual([img.width, img.height], [2048, 1536]);
  const trace = JSON.parse(Deno.readTextFileSync(join(dir, "t.json")));
  assert.ok(trace.scales[0].tiles > 1, JSON.stringify(trace.scales));
  const MiB = 2 ** 20;
  assert.ok(trace.gpu.largestBufferBytes <= 128 * MiB, JSON.stringify(trace.gpu));
  assert.ok(trace.gpu.largestBindingBytes <= 128 * MiB, JSON.stringify(trace.gpu));
  // Peak GPU memory per output pixel (the goal: at most 1 KiB at 2048×1536).
  assert.ok(trace.gpu.peakBytes / (2048 * 1536) <= 1024, JSON.stringify(trace.gpu));
});

test("--size 30000 → exit 2 'too large' within 25 s, without building a 30000-px image", async (dir) => {
  // The adapter's buffer limits make this size impossible; the CLI should find out before it
  // resizes the content to 30000×22500 (2 GB of RGB, 8 GB as a float tensor).
  const before = listDir(dir);
  const r = await stylize(
    dir,
    ["content.png", "style.png", "-o", "out.png", "--size", "30000", "--style-size", "32", "-q"],
    { timeoutMs: 25_000 },
  );
  assert.notEqual(r.code, 137, `killed after ${(r.ms / 1000).toFixed(1)} s: too slow to refuse`);
  assert.equal(r.code, 2, r.stderr);
  const lines = r.stderr.split("\n").filter((l) => l.trim() !== "");
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0], /^stylize: .*too large/i);
  assert.deepEqual(listDir(dir), before);
});

test("unknown flag --frobnicate → exit 2, one line naming it", async (dir) => {
  await expectUserError(
    dir,
    ["content.png", "style.png", "--frobnicate", ...SMALL],
    /frobnicate/,
  );
});

test("non-numeric --iters abc → exit 2, 'not a number'", async (dir) => {
  await expectUserError(
    dir,
    ["content.png", "style.png", ...SMALL, "--iters", "abc"],
    /--iters.*abc.*not a number/,
  );
});

test("negative --size -5 → exit 2, one line naming --size", async (dir) => {
  await expectUserError(dir, ["content.png", "style.png", "--size", "-5"], /--size/);
  await expectUserError(dir, ["content.png", "style.png", "--size=-5"], /--size.*at least/);
});

test("negative --lr -1 → exit 2, one line naming --lr", async (dir) => {
  await expectUserError(dir, ["content.png", "style.png", ...SMALL, "--lr", "-1"], /--lr/);
  await expectUserError(dir, ["content.png", "style.png", ...SMALL, "--lr=-1"], /--lr.*≥ 0/);
});

test("unknown --content-layer fire10 → exit 2, 'unknown layer'", async (dir) => {
  await expectUserError(
    dir,
    ["content.png", "style.png", ...SMALL, "--content-layer", "fire10"],
    /--content-layer.*unknown layer "fire10"/,
  );
});

test("unknown --style-layers conv1,bogus (with matching --style-weights) → exit 2", async (dir) => {
  await expectUserError(
    dir,
    [
      "content.png",
      "style.png",
      ...SMALL,
      "--style-layers",
      "conv1,bogus",
      "--style-weights",
      "1,1",
    ],
    /--style-layers.*unknown layer "bogus"/,
  );
});

test(
  "unknown --pooling value (mean, empty, missing) → exit 2, one line naming --pooling",
  async (dir) => {
    const args = ["content.png", "style.png", ...SMALL];
    await expectUserError(
      dir,
      [...args, "--pooling", "mean"],
      /--pooling: "mean" is not max or avg/,
    );
    await expectUserError(dir, [...args, "--pooling="], /--pooling: "" is not max or avg/);
    await expectUserError(dir, [...args, "--pooling"], /--pooling/);
  },
);

test("output in a nonexistent directory → exit 2, 'not writable'", async (dir) => {
  await expectUserError(
    dir,
    ["content.png", "style.png", "-o", "/nonexistent-dir/out.png", ...SMALL],
    /\/nonexistent-dir.*not writable/,
  );
  assert.equal(exists("/nonexistent-dir"), false);
});

test(`output in a read-only directory → exit 2, 'not writable'${FILE_MODES_NOTE}`, async (dir) => {
  Deno.mkdirSync(join(dir, "ro"));
  Deno.chmodSync(join(dir, "ro"), 0o555);
  try {
    await expectUserError(
      dir,
      ["content.png", "style.png", "-o", "ro/out.png", ...SMALL],
      /ro\/out\.png.*not writable/,
      {},
      true,
    );
    assert.deepEqual(listDir(join(dir, "ro")), []);
  } finally {
    Deno.chmodSync(join(dir, "ro"), 0o755);
  }
});

test(
  "missing weights (--weights /nonexistent.mat) → exit 2, one line naming the file",
  async (dir) => {
    await expectUserError(
      dir,
      ["content.png", "style.png", "-o", "out.png", ...SMALL, "--weights", "/nonexistent.mat"],
      /\/nonexistent\.mat/,
    );
  },
);

test("tampered weights (bytes changed in the middle) → exit 2, one line about the weights", async (dir) => {
  const bytes = Deno.readFileSync(WEIGHTS);
  const mid = bytes.length >> 1;
  bytes.fill(0xff, mid, mid + 64);
  Deno.writeFileSync(join(dir, "tampered.mat"), bytes);
  await expectUserError(
    dir,
    [
      "content.png",
      "style.png",
      "-o",
      "out.png",
      ...SMALL,
      "--iters",
      "2",
      "--weights",
      "tampered.mat",
    ],
    /weights|sha256|tampered\.mat/i,
  );
});

test("-o equal to the content image → exit 2 and the content is unchanged", async (dir) => {
  const original = Deno.readFileSync(join(dir, "content.png"));
  await expectUserError(
    dir,
    ["content.png", "style.png", "-o", "content.png", ...SMALL, "--iters", "2"],
    /content\.png.*input/,
  );
  assert.deepEqual(Deno.readFileSync(join(dir, "content.png")), original);
  // The same file under another spelling is still an input.
  await expectUserError(
    dir,
    ["content.png", "style.png", "-o", "./style.png", ...SMALL, "--iters", "2"],
    /style\.png.*input/,
  );
});

test("-o equal to the --init image → exit 2 and the init image is unchanged", async (dir) => {
  await writeImage(join(dir, "init.png"), gradient(40, 30, 5));
  const original = Deno.readFileSync(join(dir, "init.png"));
  await expectUserError(
    dir,
    ["content.png", "style.png", "--init", "init.png", "-o", "init.png", ...SMALL, "--iters", "2"],
    /init\.png.*input/,
  );
  assert.deepEqual(Deno.readFileSync(join(dir, "init.png")), original);
});

test("no WebGPU adapter → exit 2, one line pointing at mesa-vulkan-drivers", async (dir) => {
  // Without a Vulkan driver wgpu would fall back to Mesa's GL llvmpipe, so the backend is pinned
  // to Vulkan (DENO_WEBGPU_BACKEND) and the loader is pointed at a driver list that is missing.
  await expectUserError(
    dir,
    ["content.png", "style.png", "-o", "out.png", ...SMALL, "--iters", "2"],
    /no WebGPU adapter.*mesa-vulkan-drivers/,
    {
      DENO_WEBGPU_BACKEND: "vulkan",
      VK_ICD_FILENAMES: "/nonexistent.json",
      VK_DRIVER_FILES: "/nonexistent.json",
    },
  );
});

// ---------------------------------------------------------------------------
// SIGINT, stages, trace, blends, init

test("SIGINT stops after the current iteration, saves a valid image and exits 0", async (dir) => {
  const child = cliCommand(
    dir,
    ["content.png", "style.png", "-o", "out.png", ...SMALL, "--iters", "500"],
    {},
    { stdout: "null", stderr: "piped" },
  ).spawn();
  const killer = setTimeout(() => child.kill("SIGKILL"), RUN_TIMEOUT_MS);
  let stderr = "";
  let sent = false;
  const dec = new TextDecoder();
  try {
    for await (const chunk of child.stderr) {
      stderr += dec.decode(chunk, { stream: true });
      if (!sent && /^iteration 1\/500/m.test(stderr)) {
        child.kill("SIGINT");
        sent = true;
      }
    }
    const status = await child.status;
    assert.ok(sent, `no progress line before the end:\n${stderr}`);
    assert.equal(status.code, 0, stderr);
  } finally {
    clearTimeout(killer);
  }
  assert.match(stderr, /interrupted/);
  const stopped = /stopped after (\d+) iterations/.exec(stderr);
  assert.ok(stopped, stderr);
  assert.ok(Number(stopped[1]) >= 1 && Number(stopped[1]) < 500, stderr);
  assert.deepEqual(listDir(dir), [...INPUTS, "out.png"].sort());
  const img = await readImage(join(dir, "out.png"));
  assert.deepEqual([img.width, img.height], [32, 24]);
});

test("--save-every 2 --iters 6 writes out-0002, out-0004 and a contact sheet out-stages", async (dir) => {
  const r = await stylize(dir, [
    "content.png",
    "style.png",
    "-o",
    "out.png",
    ...SMALL,
    "--iters",
    "6",
    "--save-every",
    "2",
    "--quiet",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(
    listDir(dir),
    [...INPUTS, "out.png", "out-0002.png", "out-0004.png", "out-stages.png"].sort(),
  );
  for (const f of ["out.png", "out-0002.png", "out-0004.png"]) {
    const img = await readImage(join(dir, f));
    assert.deepEqual([img.width, img.height], [32, 24], f);
  }
  const sheet = await readImage(join(dir, "out-stages.png"));
  assert.ok(sheet.width > sheet.height, `contact sheet ${sheet.width}×${sheet.height}`);
  // content, style, two stages and the final image side by side
  assert.ok(sheet.width >= 5 * 24, `contact sheet ${sheet.width}×${sheet.height}`);
});

test("--trace writes JSON with config, adapter, one record per iteration and output", async (dir) => {
  const iters = 4;
  const r = await stylize(dir, [
    "content.png",
    "style.png",
    "-o",
    "out.png",
    ...SMALL,
    "--iters",
    String(iters),
    "--trace",
    "t.json",
    "--quiet",
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(listDir(dir), [...INPUTS, "out.png", "t.json"].sort());
  const trace = JSON.parse(Deno.readTextFileSync(join(dir, "t.json")));
  assert.equal(typeof trace.config, "object");
  assert.ok(trace.config !== null && !Array.isArray(trace.config));
  assert.equal(typeof trace.adapter, "string");
  assert.ok(trace.adapter.length > 0);
  assert.equal(trace.output, "out.png");
  assert.ok(Array.isArray(trace.iterations));
  assert.equal(trace.iterations.length, iters);
  let prev = -1;
  for (const rec of trace.iterations) {
    for (const k of ["i", "loss", "content", "style", "tv", "ms"]) {
      assert.equal(typeof rec[k], "number", `iterations[].${k} in ${JSON.stringify(rec)}`);
      assert.ok(Number.isFinite(rec[k]), `iterations[].${k} in ${JSON.stringify(rec)}`);
    }
    assert.ok(rec.i > prev, "i must increase");
    prev = rec.i;
  }
  assert.equal(trace.iterations[0].i, 0);
  assert.equal(trace.iterations.at(-1).i, iters - 1);
});

test("--pooling avg runs with average pooling: the trace says so and its losses differ from max pooling's", async (dir) => {
  const trace = async (extra: string[]) => {
    const args = [...INPUTS, "-o", "out.png", ...SMALL, "--iters", "2", "--trace", "t.json"];
    const r = await stylize(dir, [...args, "--quiet", ...extra]);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(Deno.readTextFileSync(join(dir, "t.json")));
  };
  const avg = await trace(["--pooling", "avg"]);
  const max = await trace([]);
  assert.equal(avg.config.pooling, "avg");
  assert.equal(max.config.pooling, "max");
  const [a, m] = [avg.iterations[0].loss, max.iterations[0].loss];
  assert.ok(Number.isFinite(a) && Number.isFinite(m), `losses ${a}, ${m}`);
  assert.ok(Math.abs(a - m) > 1e-3 * Math.abs(m), `first losses avg ${a} vs max ${m}`);
  const img = await readImage(join(dir, "out.png"));
  assert.deepEqual([img.width, img.height], [32, 24]);
});

test("--style-blend with one weight for two styles → exit 2", async (dir) => {
  await writeImage(join(dir, "style2.png"), gradient(36, 36, 150));
  await expectUserError(
    dir,
    ["content.png", "style.png", "style2.png", "--style-blend", "1", "-o", "out.png", ...SMALL],
    /--style-blend/,
  );
});

test("--init random --seed 3 produces an image", async (dir) => {
  await expectImage(dir, ["content.png", "style.png", "--init", "random", "--seed", "3"]);
});

test("--init missing.png → exit 2, one line naming it", async (dir) => {
  await expectUserError(
    dir,
    ["content.png", "style.png", "--init", "missing.png", "-o", "out.png", ...SMALL],
    /missing\.png.*no such file/,
  );
});

// ---------------------------------------------------------------------------
// A fresh machine

/**
 * The parent's environment without what would warm or steer a child's caches
 * (the shader cache and vector width, the cache and home directories), plus
 * `extra`: so a child starts as on a fresh machine whatever ran before.
 */
function freshEnv(extra: Record<string, string>): Record<string, string> {
  const env = Deno.env.toObject();
  for (const k of ["MESA_SHADER_CACHE_DIR", "LP_NATIVE_VECTOR_WIDTH", "STYLIZE_CACHE_DIR"]) {
    delete env[k];
  }
  return { ...env, ...extra };
}

/**
 * The module cache this test process runs from, as Deno chose it (DENO_DIR,
 * else under XDG_CACHE_HOME, else under HOME): a child given a fresh HOME and
 * XDG_CACHE_HOME finds its modules there instead of downloading them.
 */
async function denoDir(): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json"],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  assert.equal(out.code, 0, "deno info --json failed");
  return JSON.parse(new TextDecoder().decode(out.stdout)).denoDir;
}

test("with --weights and empty caches, the first run prints nothing with --quiet and a later one starts from its shader cache", async (dir) => {
  // HOME and XDG_CACHE_HOME fresh: stylize's cache and Mesa's own (without
  // AVX-512 stylize leaves Mesa's cache where Mesa puts it) start empty; no
  // cache directory exists until a run makes it. Deno's module cache stays.
  const home = join(dir, "home");
  Deno.mkdirSync(home);
  const env = freshEnv({
    HOME: home,
    XDG_CACHE_HOME: join(home, ".cache"),
    DENO_DIR: await denoDir(),
  });
  const args = [...INPUTS, "-o", "out.png", ...SMALL, "--iters", "2", "--quiet"];
  const run = () =>
    new Deno.Command(Deno.execPath(), {
      args: ["run", "--config", CONFIG, ...PERMS, CLI, ...args, "--weights", WEIGHTS],
      cwd: dir,
      clearEnv: true,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(RUN_TIMEOUT_MS),
    }).output();
  const timed = async () => {
    const t0 = performance.now();
    const out = await run();
    return { out, ms: performance.now() - t0, err: new TextDecoder().decode(out.stderr) };
  };
  const first = await timed();
  assert.equal(first.out.code, 0, first.err);
  assert.equal(first.err, "", "the first run must print nothing with --quiet");
  const second = await timed();
  assert.equal(second.out.code, 0, second.err);
  assert.equal(second.err, "");
  assert.ok(
    second.ms < first.ms / 2,
    `second run ${second.ms.toFixed(0)} ms, first ${first.ms.toFixed(0)} ms: not from the cache`,
  );
});

test("a loss beyond 32-bit floats stops the run: exit 2, one line naming the iteration, the term and the weight, no output", async (dir) => {
  await expectUserError(
    dir,
    [
      ...INPUTS,
      "-o",
      "out.png",
      ...SMALL,
      "--iters",
      "5",
      "--style-weights",
      "1e38,1e38,1e38,1e38",
    ],
    /^stylize: iteration \d+: the style loss at conv1 is Infinity .*lower the style weights/,
  );
});

test("a file where the output's directory should be → exit 2, one line (as any user, root too)", async (dir) => {
  Deno.writeTextFileSync(join(dir, "afile"), "");
  await expectUserError(
    dir,
    [...INPUTS, "-o", "afile/out.png", ...SMALL],
    /afile.*not writable/,
  );
});

test("a directory where the output file should go → exit 2, 'is a directory' (root too)", async (dir) => {
  Deno.mkdirSync(join(dir, "out.png"));
  await expectUserError(dir, [...INPUTS, "-o", "out.png", ...SMALL], /out\.png: is a directory/);
  Deno.mkdirSync(join(dir, "t.json"));
  await expectUserError(
    dir,
    [...INPUTS, "-o", "o2.png", "--trace", "t.json", ...SMALL],
    /t\.json: is a directory/,
  );
});

test("a directory given as an input image → exit 2, 'is a directory' (root too)", async (dir) => {
  Deno.mkdirSync(join(dir, "adir.png"));
  await expectUserError(
    dir,
    ["adir.png", "style.png", "-o", "out.png", ...SMALL],
    /adir\.png: is a directory/,
  );
});

Deno.test("progress: the rate and ETA count only the iterations after the first, which compiles the kernels", () => {
  assert.equal(loopRate(1, 100, 9000, 9000), null);
  // 50 done: the first ended at 9 s, 49 more took 9.8 s → 5 it/s, 50 left → 10 s.
  const r = loopRate(50, 100, 18_800, 9000)!;
  assert.ok(Math.abs(r.rate - 5) < 1e-9, String(r.rate));
  assert.ok(Math.abs(r.eta - 10) < 1e-9, String(r.eta));
});

// ---------------------------------------------------------------------------
// Controls: strength, seed, iterate averaging, original colours; scales

/** Runs a small stylize with `args` into `out` (32 px, 4 iterations unless given); returns the image. */
async function runTo(dir: string, out: string, args: string[]): Promise<RgbImage> {
  const r = await stylize(dir, [...INPUTS, "-o", out, ...SMALL, "--iters", "4", "-q", ...args]);
  assert.equal(r.code, 0, r.stderr);
  return await readImage(join(dir, out));
}

/** The largest difference of two images' channel values. */
function maxDiff(a: RgbImage, b: RgbImage): number {
  assert.deepEqual([a.width, a.height], [b.width, b.height]);
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(a.data[i] - b.data[i]));
  return m;
}

test("--strength 2 gives the same image as --style-weights doubled", async (dir) => {
  const doubled = DEFAULT_CONFIG.styleWeights.map((w) => 2 * w).join(",");
  const a = await runTo(dir, "a.png", ["--strength", "2"]);
  const b = await runTo(dir, "b.png", ["--style-weights", doubled]);
  const c = await runTo(dir, "c.png", []);
  assert.deepEqual(a.data, b.data);
  assert.ok(maxDiff(a, c) > 0, "strength 2 changes nothing");
});

test("--init random --seed: the same seed gives the same image, another seed another", async (dir) => {
  const a = await runTo(dir, "a.png", ["--init", "random", "--seed", "3"]);
  const b = await runTo(dir, "b.png", ["--init", "random", "--seed", "3"]);
  const c = await runTo(dir, "c.png", ["--init", "random", "--seed", "4"]);
  assert.deepEqual(a.data, b.data);
  assert.ok(maxDiff(a, c) > 8, "seeds 3 and 4 give the same image");
});

test("--avg-decay D writes the bias-corrected average of the run's own iterates (as --save-every 1 writes them) within one level", async (dir) => {
  const d = 0.7;
  const iters = 5;
  await runTo(dir, "x.png", ["--iters", String(iters), "--save-every", "1"]);
  const iterates = [];
  for (let t = 1; t < iters; t++) {
    iterates.push(await readImage(join(dir, `x-${String(t).padStart(4, "0")}.png`)));
  }
  iterates.push(await readImage(join(dir, "x.png")));
  const avg = await runTo(dir, "avg.png", ["--iters", String(iters), "--avg-decay", String(d)]);
  const a = new Float64Array(avg.data.length);
  for (const x of iterates) {
    for (let k = 0; k < a.length; k++) a[k] = d * a[k] + (1 - d) * x.data[k];
  }
  let worst = 0;
  for (let k = 0; k < a.length; k++) {
    worst = Math.max(worst, Math.abs(avg.data[k] - a[k] / (1 - d ** iters)));
  }
  assert.ok(worst <= 1, `max difference ${worst}`);
  assert.ok(maxDiff(avg, iterates.at(-1)!) > 1, "the average is the last iterate");
});

test("--original-colors writes the luminance of the plain run's result with the resized content's colours, within one level", async (dir) => {
  const plain = await runTo(dir, "plain.png", []);
  const kept = await runTo(dir, "kept.png", ["--original-colors"]);
  const content = resize(await readImage(join(dir, "content.png")), plain.width, plain.height);
  assert.ok(maxDiff(kept, originalColors(plain, content)) <= 1);
  assert.ok(maxDiff(kept, plain) > 1, "--original-colors changed nothing");
});

test(
  "bad --strength, --avg-decay or --reference-pixels → exit 2, one line naming the flag",
  async (dir) => {
    await expectUserError(dir, [...INPUTS, ...SMALL, "--strength", "-1"], /--strength/);
    await expectUserError(dir, [...INPUTS, ...SMALL, "--avg-decay", "1"], /--avg-decay.*\[0, 1\)/);
    await expectUserError(dir, [...INPUTS, ...SMALL, "--avg-decay", "-0.5"], /--avg-decay/);
    await expectUserError(
      dir,
      [...INPUTS, ...SMALL, "--reference-pixels", "x"],
      /--reference-pixels/,
    );
    await expectUserError(dir, [...INPUTS, ...SMALL, "--min-size", "3"], /--min-size/);
  },
);

test("scales: --min-size 32 --size 64 runs 32, 45 and 64 px; progress, stages and trace name each scale", async (dir) => {
  const r = await stylize(dir, [
    ...INPUTS,
    "-o",
    "out.png",
    "--size",
    "64",
    "--min-size",
    "32",
    "--style-size",
    "64",
    "--iters",
    "2",
    "--save-every",
    "2",
    "--trace",
    "t.json",
  ]);
  assert.equal(r.code, 0, r.stderr);
  for (const tag of ["scale 1/3, 32×24", "scale 2/3, 45×34", "scale 3/3, 64×48"]) {
    assert.ok(r.stderr.includes(tag), `no "${tag}" in\n${r.stderr}`);
  }
  // The first scale's 4 iterations (2 × --iters) give a stage at 2 and its result at 4.
  assert.deepEqual(
    listDir(dir),
    [
      ...INPUTS,
      "out.png",
      "out-s1-0002.png",
      "out-s1-0004.png",
      "out-s2-0002.png",
      "out-stages.png",
      "t.json",
    ]
      .sort(),
  );
  assert.deepEqual(
    [
      (await readImage(join(dir, "out-s1-0004.png"))).width,
      (await readImage(join(dir, "out.png"))).width,
    ],
    [32, 64],
  );
  const trace = JSON.parse(Deno.readTextFileSync(join(dir, "t.json")));
  assert.deepEqual(trace.scales.map((s: { size: number[] }) => s.size), [[24, 32], [34, 45], [
    48,
    64,
  ]]);
  assert.deepEqual(trace.scales.map((s: { iters: number }) => s.iters), [4, 2, 2]);
  assert.deepEqual(
    trace.iterations.map((i: { scale: number }) => i.scale),
    [0, 0, 0, 0, 1, 1, 2, 2],
  );
  // The size-invariant weights actually used: the content weight scaled by 49152 / (H·W).
  for (const s of trace.scales) {
    const want = 2e-5 * 49152 / (s.size[0] * s.size[1]);
    assert.ok(Math.abs(s.contentWeight / want - 1) < 1e-9, JSON.stringify(s));
  }
  for (const s of trace.scales) assert.ok(s.startMs >= 0, JSON.stringify(s));
});

// ---------------------------------------------------------------------------
// What the flags do to the values: each run's first losses (its --trace) against the
// engine's own loss at the image the flag should have started from, in this process.

let inProcess: Promise<Engine> | null = null;
/** An engine in this process with the CLI runs' tiles (the default table). */
function engine(): Promise<Engine> {
  return inProcess ??= createEngine({ weights: WEIGHTS, tilesFile: false });
}
globalThis.addEventListener("unload", () => inProcess?.then((e) => e.dispose()));

/** An image file in `dir` resized to `w`×`h`, as the CLI resizes it, as a network input. */
async function inputAt(dir: string, file: string, w: number, h: number): Promise<Tensor> {
  return toTensor(resize(await readImage(join(dir, file)), w, h));
}

/** reference.py's losses at the 32×24 scale of the small runs (with --reference-pixels 0). */
async function smallSpec(dir: string, styleTargets: Tensor[]): Promise<LossSpec> {
  const e = await engine();
  const content = await inputAt(dir, "content.png", 32, 24);
  return {
    contentLayer: DEFAULT_CONFIG.contentLayer,
    contentWeight: DEFAULT_CONFIG.contentWeight,
    contentTarget: (await e.features(content, [DEFAULT_CONFIG.contentLayer]))[
      DEFAULT_CONFIG.contentLayer
    ]!,
    styleLayers: DEFAULT_CONFIG.styleLayers,
    styleWeights: DEFAULT_CONFIG.styleWeights,
    styleTargets,
    tvWeight: DEFAULT_CONFIG.tvWeight,
  };
}

/** Each style layer's Gram of each style image (at the small runs' style size, 32). */
async function styleGrams(dir: string, files: [string, number, number][]): Promise<Tensor[][]> {
  const e = await engine();
  const out = [];
  for (const [f, w, h] of files) {
    out.push(await e.tapGrams(await inputAt(dir, f, w, h), DEFAULT_CONFIG.styleLayers));
  }
  return out;
}

/** The weighted mean of per-style Grams, layer by layer. */
function blended(grams: Tensor[][], weights: number[]): Tensor[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  return grams[0].map((g, l) => ({
    shape: g.shape,
    data: g.data.map((_, k) => grams.reduce((a, gs, s) => a + gs[l].data[k] * weights[s], 0) / sum),
  }));
}

/** A small run with --trace (and the plain weights of --reference-pixels 0); returns the trace. */
async function traced(dir: string, args: string[]): Promise<Trace> {
  const r = await stylize(dir, [
    ...args,
    "-o",
    "out.png",
    ...SMALL,
    "--reference-pixels",
    "0",
    "--trace",
    "t.json",
    "-q",
  ]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(Deno.readTextFileSync(join(dir, "t.json")));
}

interface Trace {
  scales: { iters: number; steps: number; decayAt: number; size: number[] }[];
  iterations: { scale: number; loss: number; style: number }[];
}

/** Coloured stripes two pixels wide: Grams far from the gradients'. */
function stripes(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    const on = ((i % width) >> 1) & 1;
    data.set(on ? [250, 40, 20] : [10, 60, 230], i * 3);
  }
  return { width, height, data };
}

test("--style-blend 1,3: the first style loss is the loss against each layer's 1:3 mean of the two styles' Grams", async (dir) => {
  await writeImage(join(dir, "style2.png"), stripes(36, 36));
  const trace = await traced(dir, [
    ...INPUTS,
    "style2.png",
    "--style-blend",
    "1,3",
    "--iters",
    "1",
  ]);
  const grams = await styleGrams(dir, [["style.png", 24, 32], ["style2.png", 32, 32]]);
  const content = await inputAt(dir, "content.png", 32, 24);
  const e = await engine();
  const styleAt = async (targets: Tensor[]) =>
    (await e.lossAndGradient(content, await smallSpec(dir, targets))).terms.style;
  const want = await styleAt(blended(grams, [1, 3]));
  const got = trace.iterations[0].style;
  assert.ok(Math.abs(got - want) <= 1e-4 * want, `style loss ${got} vs ${want}`);
  // Other blends give other losses: the comparison tells them apart.
  for (const other of [[1, 1], [3, 1], [1, 0]]) {
    const o = await styleAt(blended(grams, other));
    assert.ok(Math.abs(got - o) > 1e-2 * o, `blend ${other}: ${o} is as close as ${want}`);
  }
});

test("--init IMAGE: the first loss is the loss at that image resized to the first scale, not at the content", async (dir) => {
  await writeImage(join(dir, "init.png"), gradient(50, 20, 99));
  const trace = await traced(dir, [...INPUTS, "--init", "init.png", "--iters", "1"]);
  const [grams] = await styleGrams(dir, [["style.png", 24, 32]]);
  const spec = await smallSpec(dir, grams);
  const e = await engine();
  const want = (await e.lossAndGradient(await inputAt(dir, "init.png", 32, 24), spec)).loss;
  const atContent = (await e.lossAndGradient(await inputAt(dir, "content.png", 32, 24), spec)).loss;
  const got = trace.iterations[0].loss;
  assert.ok(Math.abs(got - want) <= 1e-4 * want, `first loss ${got} vs ${want}`);
  assert.ok(Math.abs(got - atContent) > 1e-2 * atContent, `the content's loss ${atContent}`);
});

test("--first-iters 3 --iters 2 over two scales: 3 iterations at the first, 2 at the second, each with its own decay point", async (dir) => {
  const trace = await traced(dir, [
    ...INPUTS,
    "--min-size",
    "23",
    "--first-iters",
    "3",
    "--iters",
    "2",
  ]);
  assert.deepEqual(trace.scales.map((s) => s.size), [[17, 23], [24, 32]]);
  assert.deepEqual(trace.scales.map((s) => [s.iters, s.steps]), [[3, 3], [2, 2]]);
  assert.deepEqual(trace.iterations.map((i) => i.scale), [0, 0, 0, 1, 1]);
  // --lr-decay-at defaults to 90% of --iters (2 of 2): the same fraction of each scale.
  assert.deepEqual(trace.scales.map((s) => s.decayAt), [3, 2]);
});

test("--lr-decay-at: at 0 Adam's first step moves each value by lr/10 (one level), at 1 by lr (ten); at 2 the losses part from a run without decay after iteration 2", async (dir) => {
  const content = resize(await readImage(join(dir, "content.png")), 32, 24);
  const moved = async (decayAt: number) => {
    const img = await runTo(dir, `d${decayAt}.png`, [
      "--iters",
      "1",
      "--lr-decay-at",
      `${decayAt}`,
    ]);
    const d = img.data.map((v, k) => Math.abs(v - content.data[k]));
    return { max: Math.max(...d), median: [...d].sort((a, b) => a - b)[d.length >> 1] };
  };
  // Adam's first step is lr · g / (|g| + ε): lr itself wherever the gradient is not ~0.
  assert.deepEqual(await moved(0), { max: 1, median: 1 });
  assert.equal((await moved(1)).median, DEFAULT_CONFIG.lr);
  const losses = async (decayAt: number) =>
    (await traced(dir, [...INPUTS, "--iters", "4", "--lr-decay-at", `${decayAt}`])).iterations
      .map((i) => i.loss);
  const [at2, never] = [await losses(2), await losses(4)];
  // Iteration i's loss is measured before its step: the first three see the same two steps.
  assert.deepEqual(at2.slice(0, 3), never.slice(0, 3));
  assert.ok(Math.abs(at2[3] - never[3]) > 1e-6 * never[3], `${at2[3]} vs ${never[3]}`);
});
