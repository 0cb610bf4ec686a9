/**
 * `deno task test`: finds the test weights once (tests/data.ts: the CLI's
 * resolver, with `$STYLIZE_WEIGHTS` or the shared data's copy as a local
 * mirror), stopping at once with one line when there are none; then runs both
 * suites, the root one (`tests/`) and the page's (`tools/web/`, with its own
 * configuration), each to its end whatever the other did, and exits non-zero
 * if either failed. Each suite prints deno test's own summary
 * (`ok | N passed | N failed`), which `.ci/run` adds up.
 *
 * Arguments: test files or folders run only those, each in its suite; others
 * (flags such as `--filter NAME`) go to every `deno test`.
 * @module
 */
import { relative, resolve } from "node:path";
import { REPO_ROOT, weightsPath } from "../tests/data.ts";

/** The permissions the tests run with. */
const PERMS = [
  "--allow-read",
  "--allow-write",
  "--allow-env",
  "--allow-net",
  "--allow-run",
  "--allow-sys",
  "--allow-ffi",
];

/** deno test's flags that take their value as the next argument. */
const VALUE_FLAGS = new Set(["--filter", "--reporter", "--junit-path", "--coverage"]);

interface Suite {
  name: string;
  config: string[];
  paths: string[];
}

/** The suites to run: both, or those the given paths fall in. */
export function suites(args: string[]): { suites: Suite[]; flags: string[] } {
  const flags: string[] = [];
  const root: string[] = [];
  const web: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a.startsWith("-")) {
      flags.push(a);
      if (VALUE_FLAGS.has(a) && i + 1 < args.length) flags.push(args[++i]);
      continue;
    }
    const rel = relative(REPO_ROOT, resolve(a));
    (rel.startsWith("tools/web") ? web : root).push(rel);
  }
  const any = root.length + web.length > 0;
  const out: Suite[] = [];
  if (!any || root.length) out.push({ name: "tests/", config: [], paths: any ? root : ["tests/"] });
  if (!any || web.length) {
    out.push({
      name: "tools/web/",
      config: ["--config", "tools/web/deno.json"],
      paths: any ? web : ["tools/web/"],
    });
  }
  return { suites: out, flags };
}

async function main(args: string[]): Promise<number> {
  try {
    await weightsPath();
  } catch (err) {
    console.error(`test: ${(err as Error).message}`);
    return 2;
  }
  const { suites: run, flags } = suites(args);
  const results: string[] = [];
  let failed = false;
  for (const s of run) {
    const { code } = await new Deno.Command(Deno.execPath(), {
      args: ["test", ...PERMS, ...s.config, ...flags, ...s.paths],
      cwd: REPO_ROOT,
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).output();
    failed ||= code !== 0;
    results.push(`${s.name} ${code === 0 ? "ok" : `FAILED (exit ${code})`}`);
  }
  console.log(`\ntest: ${results.join("; ")}`);
  return failed ? 1 : 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
