/**
 * The README's screenshots of the page, made with the tests' harness:
 * headless Chromium paints the regions of the bundled masks example (the
 * cat's from examples/chelsea_cat.png given as a mask file, the
 * background's painted with the mouse; docs/web-regions.png), runs it in the
 * page, captured mid-run (docs/web-page.png); the run is stopped there and
 * captured with the before/after slider half way (docs/web-compare.png),
 * then at 390 px wide (docs/web-narrow.png).
 *
 *   deno run -A --config tools/web/deno.json tools/web/screenshot.ts \
 *     [--out-dir docs] [--size 256] [--iters 200] [--at 60] [--weights PATH]
 * @module
 */
import { join } from "node:path";
import { parseArgs } from "node:util";
import { resolveWeights } from "../../src/deno/weights_file.ts";
import { launchBrowser, openPage, startRun, startSite, waitForState } from "./harness.ts";
import { dragOver, previewBox } from "./page_checks.ts";

const EXAMPLES = new URL("../../examples/", import.meta.url).pathname;

const { values } = parseArgs({
  args: Deno.args,
  options: {
    "out-dir": { type: "string", default: new URL("../../docs/", import.meta.url).pathname },
    size: { type: "string", default: "256" },
    iters: { type: "string", default: "200" },
    at: { type: "string", default: "60" },
    weights: { type: "string" },
  },
  strict: true,
});

const out = (name: string) => join(values["out-dir"], name) as `${string}.png`;
const at = Number(values.at);
const site = await startSite({ weightsPath: await resolveWeights({ path: values.weights }) });
const browser = await launchBrowser();
try {
  const { page, errors } = await openPage(browser, site.url);
  await page.setViewport({ width: 1000, height: 760 });
  await waitForState(page, ["idle"], 60_000, (s) => s.text.startsWith("ready"));
  await (await page.$("input#content"))!.uploadFile(`${EXAMPLES}chelsea.png`);
  await (await page.$("input#style"))!.uploadFile(
    `${EXAMPLES}starry_night.jpg`,
    `${EXAMPLES}hubble_deep_field.jpg`,
  );
  await page.click("#regions");
  const hint = (re: RegExp) =>
    page.waitForFunction(
      (re) => new RegExp(re).test(document.getElementById("regions-hint")!.textContent!),
      {},
      re.source,
    );
  await hint(/^Nothing painted/);
  await (await page.$("input#mask-file"))!.uploadFile(`${EXAMPLES}chelsea_cat.png`);
  await hint(/^style 1 \(red\): \d+%/);
  await page.select("#mask-style", "1");
  await page.$eval("#brush-size", (el) => (el as HTMLInputElement).value = "22");
  await dragOver(page, await previewBox(page), [[0.03, 0.4], [0.06, 0.06], [0.94, 0.05], [
    0.95,
    0.95,
  ]]);
  await hint(/style 2 \(blue\): \d+%/);
  await page.screenshot({ path: out("web-regions.png"), fullPage: true });
  await page.click("#regions");
  await startRun(page, {
    size: Number(values.size),
    iters: Number(values.iters),
    stageEvery: 24,
  });
  const iteration = (s: { text: string }) => Number(/^iteration (\d+)/.exec(s.text)?.[1] ?? 0);
  const s = await waitForState(page, ["running", "error"], 600_000, (s) => iteration(s) >= at);
  if (s.state === "error") throw new Error(s.text);
  // The plot is redrawn on the next frame.
  await new Promise((r) => setTimeout(r, 300));
  await page.screenshot({ path: out("web-page.png"), fullPage: true });
  await page.click("#stop");
  await waitForState(page, ["done", "error"], 60_000);
  await page.$eval("#compare", (el) => {
    (el as HTMLInputElement).value = "50";
    el.dispatchEvent(new Event("input"));
  });
  await page.screenshot({ path: out("web-compare.png"), fullPage: true });
  await page.setViewport({ width: 390, height: 844 });
  await new Promise((r) => setTimeout(r, 300));
  await page.screenshot({ path: out("web-narrow.png"), fullPage: true });
  if (errors.length) throw new Error(`the page logged errors: ${errors.join("; ")}`);
  console.log(
    `wrote web-regions.png, web-page.png (iteration ${iteration(s)}), web-compare.png, ` +
      "web-narrow.png",
  );
} finally {
  await browser.close();
  await site.close();
}
