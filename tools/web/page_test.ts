/**
 * The page in a real browser (headless Chromium with WebGPU on SwiftShader):
 * it loads cleanly, a small run matches the CLI's loss, Stop stops, bad input
 * gives a message and the page keeps working, the download is a PNG of the
 * requested size, and the weights come from Cache Storage after a reload.
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Page } from "puppeteer-core";
import { decodeImage, readImage, writeImage } from "../../src/deno/image/mod.ts";
import { fitLongerSide } from "../../src/engine/image/mod.ts";
import { cpuDriver } from "../../src/deno/driver.ts";
import { repoPath, testImage, weightsPath } from "../../tests/data.ts";
import { launchBrowser, openPage, startRun, startSite, waitForState } from "./harness.ts";

const WEIGHTS = await weightsPath();
const CONTENT = testImage("chelsea.png");
/** SwiftShader's first run compiles every kernel; later steps are faster. */
const RUN_TIMEOUT_MS = 240_000;

/** The style image as a PNG (browser and CLI decode PNGs to the same pixels; JPEGs differ). */
async function stylePng(dir: string): Promise<string> {
  const path = join(dir, "hubble.png");
  await writeImage(
    path,
    await readImage(testImage("hubble_deep_field.jpg")),
  );
  return path;
}

/**
 * The environment of the CLI run: a cache directory of its own, so a user's
 * tuned tiles or cached files never steer it (the page runs the default
 * tiles); Mesa's shader cache stays the one this process would use (the
 * driver plan's), so the kernels compiled before are reused.
 */
function cliEnv(dir: string): Record<string, string> {
  const mesa = cpuDriver().cacheDir;
  return {
    STYLIZE_CACHE_DIR: join(dir, "cli-cache"),
    ...(mesa ? { MESA_SHADER_CACHE_DIR: mesa } : {}),
  };
}

/** The CLI's final loss on the same inputs and settings (its --trace's last record). */
async function cliFinalLoss(dir: string, args: string[]): Promise<number> {
  const trace = join(dir, "trace.json");
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--config",
      repoPath("deno.json"),
      repoPath("src", "deno", "cli.ts"),
      ...args,
      "-o",
      join(dir, "cli.png"),
      "--weights",
      WEIGHTS,
      "--trace",
      trace,
      "--quiet",
    ],
    env: cliEnv(dir),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const t = JSON.parse(await Deno.readTextFile(trace));
  return t.iterations.at(-1).loss;
}

/** The bytes behind `#download`'s href. */
async function downloaded(page: Page): Promise<Uint8Array> {
  const bytes = await page.$eval("#download", async (a) => {
    const href = (a as HTMLAnchorElement).getAttribute("href");
    if (!href) return null;
    return Array.from(new Uint8Array(await (await fetch(href)).arrayBuffer()));
  });
  assert.ok(bytes, "#download has no href");
  return new Uint8Array(bytes);
}

const weightsFetches = (requests: { path: string }[]) =>
  requests.filter((r) => r.path === "/sqz_notop.mat").length;

Deno.test({
  name: "page: in headless Chromium with WebGPU",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "stylize-page-test-" });
    const site = await startSite({ weightsPath: WEIGHTS });
    const browser = await launchBrowser();
    try {
      const style = await stylePng(dir);
      const { page, errors } = await openPage(browser, site.url);
      const ready = (s: { text: string }) => s.text.startsWith("ready");

      await t.step(
        "loads with no console error and names the adapter",
        async () => {
          await waitForState(page, ["idle"], 60_000, ready);
          const adapter = await page.$eval(
            "#adapter",
            (el) => el.textContent ?? "",
          );
          assert.match(adapter, /^adapter: \S/);
          assert.deepEqual(errors, []);
          assert.equal(weightsFetches(site.requests), 1);
        },
      );

      await t.step(
        "a 64-px, 10-iteration run ends done with the CLI's final loss (1%)",
        async () => {
          await startRun(page, {
            content: CONTENT,
            styles: [style],
            size: 64,
            iters: 10,
          });
          const s = await waitForState(page, ["done", "error"], RUN_TIMEOUT_MS);
          assert.equal(s.state, "done", s.text);
          const cli = await cliFinalLoss(dir, [
            CONTENT,
            style,
            "--size",
            "64",
            "--iters",
            "10",
          ]);
          console.log(`final loss: page ${s.loss}, CLI ${cli}`);
          assert.ok(
            Math.abs(s.loss - cli) <= 0.01 * Math.abs(cli),
            `page ${s.loss}, CLI ${cli}`,
          );
        },
      );

      await t.step(
        "the downloaded PNG decodes at the requested size",
        async () => {
          const img = await decodeImage(await downloaded(page), "download");
          const src = await readImage(CONTENT);
          assert.deepEqual(
            [img.width, img.height],
            fitLongerSide(src.width, src.height, 64),
          );
        },
      );

      await t.step(
        "the page answers during a run, and Stop stops it and offers the image so far",
        async () => {
          await startRun(page, { iters: 5000 });
          await waitForState(
            page,
            ["running"],
            60_000,
            (s) => /^iteration [3-9]/.test(s.text),
          );
          // The page answers while it runs (the loop awaits the GPU, never blocks).
          const t0 = performance.now();
          await page.evaluate(() => new Promise((r) => requestAnimationFrame(r)));
          const ms = performance.now() - t0;
          assert.ok(ms < 2_000, `a frame took ${ms} ms`);
          await page.click("#stop");
          const s = await waitForState(page, ["done", "error"], 30_000);
          const m = /stopped after (\d+) of 5000 iterations/.exec(s.text);
          assert.ok(m && Number(m[1]) < 5000, s.text);
          const img = await decodeImage(await downloaded(page), "download");
          assert.equal(img.width, 64);
        },
      );

      await t.step(
        "a text file as the content image gives error, then a good run works",
        async () => {
          const text = join(dir, "notes.txt");
          await Deno.writeTextFile(text, "not an image\n");
          await startRun(page, { content: text, iters: 3 });
          const bad = await waitForState(page, ["done", "error"], 30_000);
          assert.equal(bad.state, "error");
          assert.match(bad.text, /notes\.txt: not an image/);
          assert.equal(
            await page.$eval("#download", (a) => a.hasAttribute("href")),
            false,
          );
          await startRun(page, { content: CONTENT, iters: 3 });
          const good = await waitForState(
            page,
            ["done", "error"],
            RUN_TIMEOUT_MS,
          );
          assert.equal(good.state, "done", good.text);
        },
      );

      await t.step(
        "a size the adapter cannot hold gives a clear error",
        async () => {
          await startRun(page, { size: 100_000, iters: 3 });
          const s = await waitForState(page, ["done", "error"], 30_000);
          assert.equal(s.state, "error");
          assert.match(
            s.text,
            /too large for this GPU.*choose a smaller output size/,
          );
          await page.$eval(
            "#size",
            (el) => (el as HTMLInputElement).value = "64",
          );
        },
      );

      await t.step(
        "a reload takes the weights from Cache Storage",
        async () => {
          await page.reload({ waitUntil: "load" });
          await waitForState(page, ["idle"], 60_000, ready);
          assert.equal(weightsFetches(site.requests), 1);
          assert.deepEqual(errors, []);
        },
      );

      await t.step(
        "without WebGPU the page says so and keeps working",
        async () => {
          const bare = await browser.newPage();
          await bare.evaluateOnNewDocument(() => {
            Object.defineProperty(Navigator.prototype, "gpu", {
              get: () => undefined,
            });
          });
          const pageErrors: string[] = [];
          bare.on("pageerror", (e) => pageErrors.push(String(e)));
          await bare.goto(site.url, { waitUntil: "load" });
          const s = await waitForState(bare, ["error"], 30_000);
          assert.match(s.text, /WebGPU is not available/);
          // The load's message cleared, so only Start can bring an error back.
          await bare.$eval("#status", (el) => {
            el.textContent = "";
            delete (el as HTMLElement).dataset.state;
          });
          await startRun(bare, {
            content: CONTENT,
            styles: [style],
            size: 64,
            iters: 2,
          });
          const again = await waitForState(bare, ["error"], 30_000);
          assert.match(again.text, /WebGPU is not available/);
          assert.deepEqual(pageErrors, []);
          await bare.close();
        },
      );
    } finally {
      await browser.close();
      await site.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
