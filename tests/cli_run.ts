/**
 * Running the CLI from tests as users run it (`deno task stylize`: the same
 * permissions and configuration), in a directory of the test's, with the
 * test's weights and caches.
 * @module
 */
import { join } from "node:path";
import { cpuDriver } from "../src/deno/driver.ts";
import { REPO_ROOT, weightsPath } from "./data.ts";

/** The repository's root. */
export const REPO = REPO_ROOT;
const WEIGHTS = await weightsPath();

/** The permissions of `deno task stylize` (deno.json), so the tests run what users run. */
export const PERMS = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-net",
  "--allow-sys",
  "--allow-ffi",
  "--allow-run",
];

/** What a CLI run printed and returned. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

const CACHE = Deno.makeTempDirSync({ prefix: "stylize-cli-cache-" });
globalThis.addEventListener("unload", () => Deno.removeSync(CACHE, { recursive: true }));

/** Runs `deno task stylize ARGS` in `cwd` with the test weights and a cache of the test run's own. */
export async function runCli(
  cwd: string,
  args: string[],
  env: Record<string, string> = {},
): Promise<CliResult> {
  const mesa = cpuDriver().cacheDir;
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--config",
      join(REPO, "deno.json"),
      ...PERMS,
      join(REPO, "src/deno/cli.ts"),
      ...args,
    ],
    cwd,
    env: {
      STYLIZE_WEIGHTS: WEIGHTS,
      STYLIZE_CACHE_DIR: CACHE,
      ...(mesa ? { MESA_SHADER_CACHE_DIR: mesa } : {}),
      XDG_RUNTIME_DIR: "/tmp",
      NO_COLOR: "1",
      ...env,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** Whether `path` exists. */
export function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/** A fresh temporary directory for `fn`, removed afterwards. */
export async function inTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "stylize-cli-test-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
