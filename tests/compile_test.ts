// Tests of `deno task compile` (tools/compile.ts) and of what a compiled binary embeds.
// Run: deno test -A tests/compile_test.ts
// denort (the runtime deno compile downloads) is unreachable offline, so these tests check the
// command line the tool builds, the module graph deno compile embeds, and the tool's error path.

import assert from "node:assert/strict";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { EXAMPLE } from "../src/deno/cli.ts";
import { weightsPath } from "./data.ts";

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const WEIGHTS = await weightsPath();
const TOOL = join(REPO_ROOT, "tools", "compile.ts");

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs tools/compile.ts with the given arguments and extra environment. */
async function runTool(
  args: string[],
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<Run> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-env", "--allow-run", TOOL, ...args],
    cwd: REPO_ROOT,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutMs),
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Splits a printed command line into words (the tool quotes only words with odd characters). */
function words(line: string): string[] {
  return line.trim().split(/\s+/);
}

/** Every value following `flag` in `argv`. */
function flagValues(argv: string[], flag: string): string[] {
  return argv.flatMap((a, i) => a === flag && i + 1 < argv.length ? [argv[i + 1]] : []);
}

const EXAMPLES = ["examples/chelsea.png", "examples/starry_night.jpg", "examples/LICENSE.md"];

/** The value following `flag` in `argv`, or undefined. */
function flagValue(argv: string[], flag: string): string | undefined {
  const i = argv.indexOf(flag);
  return i >= 0 ? argv[i + 1] : undefined;
}

async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "stylize-compile-test-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("compile --dry-run: empty cache → permissions, output, entry, examples, no weights", async () => {
  await withTempDir(async (cache) => {
    const r = await runTool(["--dry-run"], { STYLIZE_CACHE_DIR: cache });
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split("\n");
    assert.equal(lines.length, 1, `one command line expected, got:\n${r.stdout}`);
    const argv = words(lines[0]);
    assert.deepEqual(argv.slice(0, 2), ["deno", "compile"]);
    for (
      const p of ["--allow-read", "--allow-write", "--allow-env", "--allow-net", "--allow-sys"]
    ) {
      assert.ok(argv.includes(p), `missing ${p} in ${lines[0]}`);
    }
    assert.equal(flagValue(argv, "--output"), "dist/stylize");
    assert.equal(argv.at(-1), "src/deno/cli.ts");
    assert.deepEqual(flagValues(argv, "--include"), EXAMPLES, `no weights cached: ${lines[0]}`);
    assert.ok(!argv.includes("--target"));
  });
});

Deno.test("compile --dry-run: verified cached weights are embedded with --include", async () => {
  await withTempDir(async (cache) => {
    const cached = join(cache, "sqz_notop.mat");
    await Deno.copyFile(WEIGHTS, cached);
    const r = await runTool(["--dry-run"], { STYLIZE_CACHE_DIR: cache });
    assert.equal(r.code, 0, r.stderr);
    const argv = words(r.stdout);
    assert.deepEqual(flagValues(argv, "--include"), [...EXAMPLES, "dist/embed/sqz_notop.mat"]);
    assert.equal(argv.at(-1), "src/deno/cli.ts");
  });
});

Deno.test("compile --dry-run: a tampered cached file is not embedded, with a warning", async () => {
  await withTempDir(async (cache) => {
    const bytes = await Deno.readFile(WEIGHTS);
    bytes[bytes.length - 1] ^= 0xff; // same size, wrong sha256
    await Deno.writeFile(join(cache, "sqz_notop.mat"), bytes);
    const r = await runTool(["--dry-run"], { STYLIZE_CACHE_DIR: cache });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(flagValues(words(r.stdout), "--include"), EXAMPLES, r.stdout);
    assert.match(r.stderr, /sha256/);
  });
});

Deno.test("compile --dry-run: --output and --target are passed through", async () => {
  await withTempDir(async (cache) => {
    const r = await runTool(
      ["--dry-run", "--output", "dist/stylize-arm", "--target", "aarch64-unknown-linux-gnu"],
      { STYLIZE_CACHE_DIR: cache },
    );
    assert.equal(r.code, 0, r.stderr);
    const argv = words(r.stdout);
    assert.equal(flagValue(argv, "--output"), "dist/stylize-arm");
    assert.equal(flagValue(argv, "--target"), "aarch64-unknown-linux-gnu");
  });
});

Deno.test("compile: an unknown flag → exit 2 with a clear message", async () => {
  const r = await runTool(["--bogus"], {});
  assert.equal(r.code, 2);
  assert.match(r.stderr, /bogus/);
});

/** Every module (any kind, e.g. "esm" or "external" for text imports) reachable from `roots`. */
async function moduleGraph(roots: string[]): Promise<Set<string>> {
  const all = new Set<string>();
  for (const root of roots) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", root],
      cwd: REPO_ROOT,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(out.code, 0, `deno info ${root}: ${new TextDecoder().decode(out.stderr)}`);
    const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      modules: { specifier: string }[];
    };
    for (const m of info.modules) all.add(m.specifier);
  }
  return all;
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("the bundled example files exist (included by deno compile)", async () => {
  for (const f of EXAMPLES) assert.ok(await exists(join(REPO_ROOT, f)), `${f} is missing`);
  // The files the no-argument run reads are the ones embedded.
  for (const url of [EXAMPLE.content, EXAMPLE.style]) {
    assert.ok(EXAMPLES.includes(relative(REPO_ROOT, fileURLToPath(url))), url.href);
  }
});

Deno.test("every src/engine/shaders/*.wgsl is in the module graph (embedded by deno compile)", async () => {
  const shaders: string[] = [];
  for await (const e of Deno.readDir(join(REPO_ROOT, "src", "engine", "shaders"))) {
    if (e.isFile && e.name.endsWith(".wgsl")) shaders.push(e.name);
  }
  assert.ok(shaders.length > 0, "no shaders found");
  const roots: string[] = [];
  for await (const e of Deno.readDir(join(REPO_ROOT, "src", "engine", "ops"))) {
    if (e.isFile && e.name.endsWith(".ts")) roots.push(`src/engine/ops/${e.name}`);
  }
  for (const entry of ["src/deno/cli.ts", "mod.ts"]) {
    if (await exists(join(REPO_ROOT, entry))) roots.push(entry);
  }
  const graph = await moduleGraph(roots);
  const root = new URL(`file://${REPO_ROOT}/`);
  for (const name of shaders.sort()) {
    const spec = new URL(`src/engine/shaders/${name}`, root).href;
    assert.ok(graph.has(spec), `${name} is not imported by any module (${roots.join(", ")})`);
  }
});

Deno.test("compile: denort unavailable → exit 2 and one line naming DENORT_BIN", async () => {
  const entry = (await exists(join(REPO_ROOT, "src", "deno", "cli.ts")))
    ? "src/deno/cli.ts"
    : "mod.ts";
  await withTempDir(async (dir) => {
    const r = await runTool(
      ["--entry", entry, "--output", join(dir, "stylize")],
      { STYLIZE_CACHE_DIR: dir, DENORT_BIN: join(dir, "nonexistent-denort") },
      180_000,
    );
    assert.equal(r.code, 2, `exit ${r.code}\n${r.stdout}\n${r.stderr}`);
    const lines = r.stderr.trim().split("\n");
    assert.equal(lines.length, 1, `one line expected:\n${r.stderr}`);
    assert.match(lines[0], /denort/);
    assert.match(lines[0], /DENORT_BIN/);
    assert.ok(!(await exists(join(dir, "stylize"))), "no binary may be left behind");
  });
});
