/**
 * The README's screenshot of the page mid-run, made with the tests' harness:
 * headless Chromium runs the bundled example in the page, and the page is
 * captured once the run reaches an iteration, then stopped.
 *
 *   deno run -A --config tools/web/deno.json tools/web/screenshot.ts \
 *     [--out docs/web-page.png] [--size 256] [--iters 200] [--at 60] [--weights PATH]
 * @module
 */
import { parseArgs } from "node:util";
import { resolveWeights } from "../../src/deno/weights_file.ts";
import { launchBrowser, openPage, startRun, startSite, waitForState } from "./harness.ts";

const EXAMPLES = new URL("../../examples/", import.meta.url).pathname;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    out: { type: "string", default: new URL("../../docs/web-page.png", import.meta.url).pathname },
    size: { type: "string", default: "256" },
    iters: { type: "string", default: "200" },
    at: { type: "string", default: "60" },
    weights: { type: "string" },
  },
  strict: true,
});

const at = Number(values.at);
const site = await startSite({ weightsPath: await resolveWeights({ path: values.weights }) });
const browser = await launchBrowser();
try {
  const { page, errors } = await openPage(browser, site.url);
  await page.setViewport({ width: 1000, height: 760 });
  await waitForState(page, ["idle"], 60_000, (s) => s.text.startsWith("ready"));
  await startRun(page, {
    content: `${EXAMPLES}chelsea.png`,
    styles: [`${EXAMPLES}hubble_deep_field.jpg`],
    size: Number(values.size),
    iters: Number(values.iters),
  });
  const iteration = (s: { text: string }) => Number(/^iteration (\d+)/.exec(s.text)?.[1] ?? 0);
  const s = await waitForState(page, ["running", "error"], 600_000, (s) => iteration(s) >= at);
  if (s.state === "error") throw new Error(s.text);
  // The plot is redrawn on the next frame.
  await new Promise((r) => setTimeout(r, 300));
  await page.screenshot({ path: values.out, fullPage: true });
  await page.click("#stop");
  await waitForState(page, ["done", "error"], 60_000);
  if (errors.length) throw new Error(`the page logged errors: ${errors.join("; ")}`);
  console.log(`wrote ${values.out} at iteration ${iteration(s)}`);
} finally {
  await browser.close();
  await site.close();
}
