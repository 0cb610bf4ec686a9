/**
 * `deno task compile`: builds the single `dist/stylize` binary with `deno compile`.
 *
 * The WGSL shaders are imported as text modules (`import src from "../shaders/x.wgsl" with
 * { type: "text" }`), so they are part of the module graph and embedded with the code. When a
 * verified weights file is in the cache (`$STYLIZE_CACHE_DIR` or the platform cache dir; this
 * tool never downloads), it is embedded too with `--include`, so the binary can work offline.
 * The bundled example images (examples/) are always included.
 *
 * `deno compile` needs Deno's `denort` runtime for the target: it downloads it from
 * dl.deno.land unless `DENORT_BIN` names a local copy (the environment is passed through).
 *
 * Usage:
 * ```
 * deno task compile [--output dist/stylize] [--target TRIPLE] [--entry src/deno/cli.ts] [--dry-run]
 * ```
 * Exit codes: 0 built (or dry run), 2 bad flag or denort unavailable, 1 other compile failure.
 * @module
 */
import { parseArgs } from "node:util";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import {
  sha256Hex,
  WEIGHTS_FILE_NAME,
  WEIGHTS_SHA256,
  WEIGHTS_SIZE,
} from "../src/engine/model/weights.ts";
import { weightsCacheDir } from "../src/deno/weights_file.ts";

/** Repository root (the parent of tools/). */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** Permissions baked into the binary: those of `deno task stylize`. */
export const PERMISSIONS = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-net",
  "--allow-sys",
  "--allow-ffi",
  "--allow-run",
];

/**
 * The bundled example (`stylize` without arguments reads them next to src/deno/cli.ts), with their
 * licence: not imported modules, so they are embedded with `--include`.
 */
export const EXAMPLE_FILES = [
  "examples/chelsea.png",
  "examples/starry_night.jpg",
  "examples/LICENSE.md",
];

const USAGE = `usage: deno task compile [options]

Builds a single stylize binary with \`deno compile\` (shaders embedded; cached weights too).

options:
  --output PATH    output binary, relative to the repository root (default: dist/stylize)
  --target TRIPLE  cross-compile, e.g. x86_64-unknown-linux-gnu, aarch64-apple-darwin,
                   x86_64-pc-windows-msvc (default: this machine)
  --entry FILE     entry module (default: src/deno/cli.ts)
  --dry-run        print the deno compile command line and exit
  -h, --help       this text

environment:
  STYLIZE_CACHE_DIR  where cached weights are looked for (never downloaded here)
  DENORT_BIN         a local denort binary, used instead of downloading it from dl.deno.land`;

/** Options of {@link compileArgs}. */
export interface CompileOptions {
  /** Output binary path. */
  output: string;
  /** Target triple, or undefined for the host. */
  target?: string;
  /** Entry module. */
  entry: string;
  /** A verified weights file to embed, if any. */
  weights?: string;
}

/** Where the verified weights are copied to be embedded (git-ignored; see src/deno/weights_file.ts). */
export const EMBEDDED_WEIGHTS = "dist/embed/sqz_notop.mat";

/** The arguments of `deno` (starting with `compile`) for the given options. */
export function compileArgs(opts: CompileOptions): string[] {
  const args = ["compile", ...PERMISSIONS, "--output", opts.output];
  if (opts.target) args.push("--target", opts.target);
  for (const file of EXAMPLE_FILES) args.push("--include", file);
  // The verified weights are copied to EMBEDDED_WEIGHTS, where the runtime looks for them.
  if (opts.weights) args.push("--include", EMBEDDED_WEIGHTS);
  args.push(opts.entry);
  return args;
}

/**
 * The cached weights file if it exists and has the genuine size and sha256.
 * @returns `{ path }` when usable, `{ path, problem }` when present but not usable,
 *   `{}` when there is no cache or no file in it.
 */
export async function cachedWeights(): Promise<{ path?: string; problem?: string }> {
  const dir = weightsCacheDir();
  if (!dir) return {};
  const path = resolve(join(dir, WEIGHTS_FILE_NAME));
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return {};
    return { path, problem: `cannot read it (${err instanceof Error ? err.message : err})` };
  }
  if (bytes.length !== WEIGHTS_SIZE) {
    return { path, problem: `size ${bytes.length} bytes, expected ${WEIGHTS_SIZE}` };
  }
  const sha = await sha256Hex(bytes);
  if (sha !== WEIGHTS_SHA256) return { path, problem: `sha256 ${sha} does not match` };
  return { path };
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/** True if `deno compile`'s error output says the denort runtime could not be obtained. */
export function isDenortFailure(stderr: string): boolean {
  return /denort|dl\.deno\.land|Setting up base binary/i.test(stderr);
}

async function main(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        output: { type: "string", default: "dist/stylize" },
        target: { type: "string" },
        entry: { type: "string", default: "src/deno/cli.ts" },
        "dry-run": { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    console.error(`compile: ${err instanceof Error ? err.message : err}`);
    console.error("run `deno task compile --help` for the options");
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }

  const weights = await cachedWeights();
  if (weights.problem) {
    console.error(
      `compile: not embedding the cached weights ${weights.path}: ${weights.problem}; ` +
        "run `deno task weights` to fetch a verified copy",
    );
  }
  const usable = weights.problem ? undefined : weights.path;
  const args = compileArgs({
    output: values.output,
    target: values.target,
    entry: values.entry,
    weights: usable,
  });

  if (values["dry-run"]) {
    console.log(["deno", ...args].map(shellQuote).join(" "));
    return 0;
  }

  const outPath = resolve(ROOT, values.output);
  await Deno.mkdir(dirname(outPath), { recursive: true });
  if (usable) {
    await Deno.mkdir(resolve(ROOT, dirname(EMBEDDED_WEIGHTS)), { recursive: true });
    await Deno.copyFile(usable, resolve(ROOT, EMBEDDED_WEIGHTS));
  }
  const denort = Deno.env.get("DENORT_BIN");
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env: denort ? { DENORT_BIN: denort } : {}, // inherited anyway; stated for clarity
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const errText = new TextDecoder().decode(stderr);
  if (code !== 0) {
    if (isDenortFailure(errText)) {
      const where = denort
        ? `DENORT_BIN=${denort} is not a usable denort binary`
        : "it could not be downloaded from dl.deno.land (no network?)";
      console.error(
        `compile: deno compile needs Deno's denort runtime and ${where}; ` +
          "set DENORT_BIN to a local denort binary of the same Deno version " +
          `(${Deno.version.deno}) and target`,
      );
      return 2;
    }
    await Deno.stdout.write(stdout);
    await Deno.stderr.write(stderr);
    console.error(`compile: deno compile failed (exit ${code})`);
    return 1;
  }
  await Deno.stdout.write(stdout);
  await Deno.stderr.write(stderr);
  console.log(`built ${relative(Deno.cwd(), outPath) || outPath}`);
  console.log(
    usable
      ? `embedded weights: ${usable} (verified sha256 ${WEIGHTS_SHA256.slice(0, 12)}…)`
      : "weights not embedded (none cached): run `deno task weights` first for an offline binary",
  );
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
