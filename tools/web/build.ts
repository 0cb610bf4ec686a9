/**
 * Builds the page into a folder with esbuild: src/web/main.ts bundled (the
 * engine and its WGSL shaders, imported as text, with it) beside the page's
 * HTML and CSS. The result is static files any web server can host.
 * @module
 */
import * as esbuild from "esbuild";
import { join } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";

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

/** Options of {@link buildPage}. */
export interface BuildOptions {
  /** Where to write (default {@link DIST_WEB}); made if missing. */
  outDir?: string;
  /** More entry points bundled beside main.js (name → source path), e.g. the bench page's. */
  extraEntries?: Record<string, string>;
}

/**
 * Bundles and copies the page.
 * @returns the files written, relative to the output folder
 */
export async function buildPage(options: BuildOptions = {}): Promise<string[]> {
  const outDir = options.outDir ?? DIST_WEB;
  await Deno.mkdir(outDir, { recursive: true });
  try {
    const result = await esbuild.build({
      entryPoints: { main: join(WEB_SRC, "main.ts"), ...options.extraEntries },
      outdir: outDir,
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      loader: { ".wgsl": "text" },
      sourcemap: "linked",
      logLevel: "silent",
      metafile: true,
    });
    for (const f of STATIC_FILES) {
      await Deno.copyFile(join(WEB_SRC, f), join(outDir, f));
    }
    const bundled = Object.keys(result.metafile.outputs).map((p) =>
      p.slice(p.lastIndexOf("/") + 1)
    );
    return [...STATIC_FILES, ...bundled];
  } finally {
    await esbuild.stop();
  }
}
