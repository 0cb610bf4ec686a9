/**
 * `deno task bench --browser`'s peer: the same iteration timed in headless
 * Chromium (WebGPU on the browser's adapter: SwiftShader where there is no
 * GPU), one JSON line per size on stdout. bench/bench.ts runs it in a child
 * process with this folder's configuration.
 *
 *   deno run -A --config tools/web/deno.json tools/web/bench_browser.ts \
 *     --sizes 192x256 [--batch 10] [--batches 3] [--warmup 2] [--weights PATH]
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { resolveWeights } from "../../src/deno/weights_file.ts";
import { launchBrowser, openPage, startSite } from "./harness.ts";
import type { BrowserBench } from "./bench_page.ts";

const EXAMPLES = new URL("../../examples/", import.meta.url).pathname;

/** A positive integer flag. */
function count(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${flag}: "${v}" is not a positive integer`);
  return n;
}

/** Parses the flags. */
function flags(args: string[]) {
  const { values } = parseArgs({
    args,
    options: {
      sizes: { type: "string", default: "192x256" },
      batch: { type: "string", default: "10" },
      batches: { type: "string", default: "3" },
      warmup: { type: "string", default: "2" },
      weights: { type: "string" },
    },
    strict: true,
  });
  const sizes = values.sizes.split(",").map((s) => {
    const m = /^(\d+)x(\d+)$/.exec(s.trim());
    if (!m) throw new Error(`--sizes: "${s}" is not HxW`);
    return [Number(m[1]), Number(m[2])] as [number, number];
  });
  return {
    sizes,
    batch: count("batch", values.batch),
    batches: count("batches", values.batches),
    warmup: count("warmup", values.warmup),
    weights: values.weights,
  };
}

/** Runs the bench page in Chromium; returns its results. */
async function benchInBrowser(o: ReturnType<typeof flags>): Promise<BrowserBench[]> {
  const weightsPath = await resolveWeights({ path: o.weights });
  const site = await startSite({
    weightsPath,
    build: { extraEntries: { bench: new URL("./bench_page.ts", import.meta.url).pathname } },
  });
  const browser = await launchBrowser();
  try {
    await Deno.writeTextFile(
      join(site.dir, "bench.html"),
      '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">' +
        '<script type="module" src="bench.js"></script>\n',
    );
    for (const f of ["chelsea.png", "hubble_deep_field.jpg"]) {
      await Deno.copyFile(join(EXAMPLES, f), join(site.dir, f));
    }
    const { page, errors } = await openPage(browser, `${site.url}bench.html`);
    page.setDefaultTimeout(0);
    await page.waitForFunction(() => "stylizeBench" in globalThis);
    const results = await page.evaluate(
      (sizes, opts) =>
        (globalThis as unknown as {
          stylizeBench: (s: [number, number][], o: unknown) => Promise<BrowserBench[]>;
        }).stylizeBench(sizes, opts),
      o.sizes,
      { batch: o.batch, batches: o.batches, warmup: o.warmup },
    );
    if (errors.length) throw new Error(`the bench page logged errors: ${errors.join("; ")}`);
    return results;
  } finally {
    await browser.close();
    await site.close();
  }
}

if (import.meta.main) {
  for (const r of await benchInBrowser(flags(Deno.args))) console.log(JSON.stringify(r));
}
