/**
 * Builds the page into a folder with esbuild: src/web/main.ts (the page's
 * main thread) and src/web/worker.ts (its module worker: the engine and its
 * WGSL shaders, imported as text) bundled beside the page's HTML and CSS,
 * then src/web/sw.ts (the service worker) with the list of those files and a
 * version made from their bytes. The result is static files any web server
 * can host.
 * @module
 */
import * as esbuild from "esbuild";
import { join } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { sha256Hex } from "../../src/engine/model/weights.ts";

/** The page's source folder. */
const WEB_SRC: string = fromFileUrl(
  new URL("../../src/web/", import.meta.url),
);

/** The default output folder, `dist/web/` at the repository root. */
export const DIST_WEB: string = fromFileUrl(
  new URL("../../dist/web/", import.meta.url),
);

/** The files copied as they are. */
const STATIC_FILES = ["index.html", "style.css"];

/** The files the service worker keeps for offline visits ("./" is the page itself). */
export const OFFLINE_FILES = ["./", ...STATIC_FILES, "main.js", "worker.js"];

/** Options of {@link buildPage}. */
export interface BuildOptions {
  /** Where to write (default {@link DIST_WEB}); made if missing. */
  outDir?: string;
  /** More entry points bundled beside main.js (name → source path), e.g. the bench page's. */
  extraEntries?: Record<string, string>;
}

/** esbuild's options shared by every bundle. */
const COMMON: esbuild.BuildOptions = {
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  loader: { ".wgsl": "text" },
  sourcemap: "linked",
  logLevel: "silent",
  metafile: true,
};

/** The names of a build's output files. */
function outputs(result: esbuild.BuildResult): string[] {
  return Object.keys(result.metafile!.outputs).map((p) => p.slice(p.lastIndexOf("/") + 1));
}

/** A version of the offline files: the first 16 hex digits of the sha256 of their bytes. */
async function version(outDir: string): Promise<string> {
  const parts = await Promise.all(
    OFFLINE_FILES.filter((f) => f !== "./").map((f) => Deno.readFile(join(outDir, f))),
  );
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  return (await sha256Hex(all)).slice(0, 16);
}

/**
 * Bundles and copies the page.
 * @returns the files written, relative to the output folder
 */
export async function buildPage(options: BuildOptions = {}): Promise<string[]> {
  const outDir = options.outDir ?? DIST_WEB;
  await Deno.mkdir(outDir, { recursive: true });
  try {
    const page = await esbuild.build({
      ...COMMON,
      entryPoints: {
        main: join(WEB_SRC, "main.ts"),
        worker: join(WEB_SRC, "worker.ts"),
        ...options.extraEntries,
      },
      outdir: outDir,
    });
    for (const f of STATIC_FILES) {
      await Deno.copyFile(join(WEB_SRC, f), join(outDir, f));
    }
    const sw = await esbuild.build({
      ...COMMON,
      entryPoints: { sw: join(WEB_SRC, "sw.ts") },
      outdir: outDir,
      define: {
        STYLIZE_SW_VERSION: JSON.stringify(await version(outDir)),
        STYLIZE_SW_FILES: JSON.stringify(OFFLINE_FILES),
      },
    });
    return [...STATIC_FILES, ...outputs(page), ...outputs(sw)];
  } finally {
    await esbuild.stop();
  }
}
