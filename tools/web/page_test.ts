/**
 * The page in a real browser (headless Chromium with WebGPU on SwiftShader),
 * each step a person's interaction: it loads cleanly and says what size the
 * GPU holds; a small run matches the CLI (its PNG's settings given to the
 * CLI's --settings-from; the stages strip is the CLI's contact sheet); the
 * before/after slider shows the content and the result; a PNG dropped on the
 * page restores its settings; Stop stops; bad input gives a message and the
 * page keeps working; a 512-px run leaves no main-thread task over 50 ms; a
 * 2048-px run finishes in tiles; regions painted with the mouse are the masks
 * exported, and a run with them matches the CLI given those mask files; a
 * GPU process crash during a run is survived on a new device; a 1024-px run
 * finishes with its submits cut for watchdogs; the GPU memory cap changes
 * what the page says it holds; a run done with the keyboard alone; nothing
 * overflows 390 px; without WebGPU the page says so; and with the network
 * off, a reload loads and runs.
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { decodeImage, readImage, writeImage } from "../../src/deno/image/mod.ts";
import { fitLongerSide, resize } from "../../src/engine/image/mod.ts";
import { readPngText } from "../../src/engine/image/png_text.ts";
import type { RgbImage } from "../../src/engine/image/types.ts";
import { parseRunRecord, RECORD_KEYWORD } from "../../src/engine/model/run_record.ts";
import { cpuDriver } from "../../src/deno/driver.ts";
import { repoPath, testImage, weightsPath } from "../../tests/data.ts";
import { launchBrowser, openPage, startRun, startSite, waitForState } from "./harness.ts";
import {
  canvasPixels,
  columns,
  downloaded,
  dragOver,
  dropFile,
  longTasksSince,
  observeLongTasks,
  overflowing,
  overlayAlpha,
  pageNow,
  previewBox,
  tabOrder,
  tabTo,
  unlabelled,
} from "./page_checks.ts";

const WEIGHTS = await weightsPath();
const CONTENT = testImage("chelsea.png");
/** SwiftShader's first run compiles every kernel; later steps are faster. */
const RUN_TIMEOUT_MS = 240_000;
/** Where the test leaves its screenshot (the narrow screen). */
const OUTPUT = Deno.env.get("STYLIZE_TEST_OUTPUT") ?? repoPath("dist", "test-output");

/** A style image as a PNG (browser and CLI decode PNGs to the same pixels; JPEGs differ). */
async function stylePng(
  dir: string,
  name = "hubble_deep_field.jpg",
  as = "hubble.png",
): Promise<string> {
  const path = join(dir, as);
  await writeImage(path, await readImage(testImage(name)));
  return path;
}

/** A path painted on the regions, in fractions of the image ([0, 0] top left). */
type Path = [number, number][];

/** The distance from (x, y) to the nearest segment of `path` (scaled by sx, sy). */
function pathDistance(path: Path, sx: number, sy: number, x: number, y: number): number {
  const pts = path.map(([fx, fy]) => [fx * sx, fy * sy]);
  let best = Infinity;
  for (let k = 0; k < Math.max(1, pts.length - 1); k++) {
    const [ax, ay] = pts[k];
    const [bx, by] = pts[Math.min(k + 1, pts.length - 1)];
    const [dx, dy] = [bx - ax, by - ay];
    const len2 = dx * dx + dy * dy;
    const t = len2 ? Math.min(1, Math.max(0, ((x - ax) * dx + (y - ay) * dy) / len2)) : 0;
    best = Math.min(best, Math.hypot(x - ax - t * dx, y - ay - t * dy));
  }
  return best;
}

/**
 * Checks a mask against the strokes that painted it (and the dab that
 * erased some): 255 where every pixel of the brush's hard core reached
 * (minus the eraser's), 0 beyond the brush's reach or inside the eraser's
 * core; the soft rims (±1 px for the pointer's rounding) are not checked.
 * Returns how many pixels of each kind were checked.
 */
function checkMask(
  mask: RgbImage,
  paint: Path,
  erase: Path | null,
  brush: { radius: number; core: number },
): { inside: number; outside: number } {
  const { width: w, height: h } = mask;
  const counts = { inside: 0, outside: 0 };
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const dp = pathDistance(paint, w, h, x + 0.5, y + 0.5);
      const de = erase ? pathDistance(erase, w, h, x + 0.5, y + 0.5) : Infinity;
      const v = mask.data[3 * (y * w + x)];
      if (dp <= brush.core - 1 && de >= brush.radius + 1) {
        assert.equal(v, 255, `pixel ${x},${y}: ${dp.toFixed(2)} px from the stroke`);
        counts.inside++;
      } else if (dp >= brush.radius + 1 || de <= brush.core - 1) {
        assert.equal(v, 0, `pixel ${x},${y}: ${dp.toFixed(2)} px from the stroke`);
        counts.outside++;
      }
    }
  }
  return counts;
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

/** The CLI run with `args` in `dir`: its final loss (its --trace's last record). */
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

/** Mean and largest absolute difference of two images of one size. */
function difference(a: RgbImage, b: RgbImage): { mean: number; max: number } {
  assert.deepEqual([a.width, a.height], [b.width, b.height]);
  let sum = 0, max = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(a.data[i] - b.data[i]);
    sum += d;
    max = Math.max(max, d);
  }
  return { mean: sum / a.data.length, max };
}

const weightsFetches = (requests: { path: string }[]) =>
  requests.filter((r) => r.path === "/sqz_notop.mat").length;

/** The page's controls, each with an id and a label (the README lists them). */
const CONTROLS = [
  "content",
  "style",
  "settings-file",
  "size",
  "iters",
  "strength",
  "stage-every",
  "style-size",
  "min-size",
  "first-iters",
  "lr",
  "content-weight",
  "style-weights",
  "tv-weight",
  "reference-pixels",
  "avg-decay",
  "original-colors",
  "init",
  "seed",
  "max-gpu-memory",
  "mask-style",
  "brush-size",
  "brush-softness",
  "eraser",
  "mask-clear",
  "mask-file",
  "download-mask",
  "start",
  "stop",
  "compare",
  "download",
  "download-stages",
];

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
      const chelsea = await readImage(CONTENT);
      const [w64, h64] = fitLongerSide(chelsea.width, chelsea.height, 64);

      await t.step(
        "loads with no console error, names the adapter and what size it holds",
        async () => {
          await waitForState(page, ["idle"], 60_000, ready);
          const adapter = await page.$eval("#adapter", (el) => el.textContent ?? "");
          assert.match(adapter, /^adapter: \S/);
          const hint = await page.waitForFunction(
            () => document.getElementById("size-hint")!.textContent,
          );
          assert.match(
            String(await hint.jsonValue()),
            /^This GPU holds up to \d+ px for a 4:3 image/,
          );
          assert.deepEqual(errors, []);
          assert.equal(weightsFetches(site.requests), 1);
        },
      );

      const pagePng = join(dir, "page.png");
      await t.step(
        "a 64-px run ends done; the CLI given its PNG's settings ends with its loss (1%) and its stages strip",
        async () => {
          await startRun(page, {
            content: CONTENT,
            styles: [style],
            size: 64,
            iters: 10,
            stageEvery: 8,
          });
          const s = await waitForState(page, ["done", "error"], RUN_TIMEOUT_MS);
          assert.equal(s.state, "done", s.text);
          const png = await downloaded(page);
          await Deno.writeFile(pagePng, png);
          const record = parseRunRecord(readPngText(png, RECORD_KEYWORD)!, "page.png");
          assert.deepEqual(
            [record.content, record.styles, record.size, record.iters, record.steps, record.masks],
            ["chelsea.png", ["hubble.png"], 64, 10, 10, false],
          );
          assert.deepEqual(record.scales, [[w64, h64]]);
          const cliOut = join(dir, "cli.png");
          const cli = await cliFinalLoss(dir, [
            CONTENT,
            style,
            "--settings-from",
            pagePng,
            "-o",
            cliOut,
            "--save-every",
            "8",
          ]);
          console.log(`final loss: page ${s.loss}, CLI ${cli}`);
          assert.ok(Math.abs(s.loss - cli) <= 0.01 * Math.abs(cli), `page ${s.loss}, CLI ${cli}`);
          // The stages strip: the CLI's contact sheet (content, style, iteration 8, result).
          const sheet = await decodeImage(await downloaded(page, "download-stages"), "stages");
          const cliSheet = await readImage(join(dir, "cli-stages.png"));
          const d = difference(sheet, cliSheet);
          console.log(
            `stages strip ${sheet.width}×${sheet.height}: mean ${d.mean.toFixed(3)}, max ${d.max}`,
          );
          assert.ok(d.max <= 4, JSON.stringify(d));
          const shown = await canvasPixels(page, "stages");
          assert.deepEqual(shown, sheet);
        },
      );

      await t.step("the downloaded PNG decodes at the requested size", async () => {
        const img = await decodeImage(await Deno.readFile(pagePng), "download");
        assert.deepEqual([img.width, img.height], [w64, h64]);
      });

      await t.step(
        "the compare slider shows the content left of it and the result right",
        async () => {
          const result = await decodeImage(await Deno.readFile(pagePng), "download");
          const before = resize(chelsea, w64, h64);
          assert.deepEqual(await canvasPixels(page, "preview"), result);
          await page.focus("#compare");
          await page.keyboard.press("End");
          assert.equal(await page.$eval("#compare", (el) => (el as HTMLInputElement).value), "100");
          assert.deepEqual(await canvasPixels(page, "preview"), before);
          await page.keyboard.press("Home");
          for (let k = 0; k < 5; k++) await page.keyboard.press("PageUp");
          const at = Number(await page.$eval("#compare", (el) => (el as HTMLInputElement).value));
          assert.ok(at > 0 && at < 100, `slider at ${at}`);
          const x = Math.round(at / 100 * w64);
          const split = await canvasPixels(page, "preview");
          assert.deepEqual(columns(split, 0, x - 1), columns(before, 0, x - 1));
          assert.deepEqual(columns(split, x + 1, w64), columns(result, x + 1, w64));
          await page.keyboard.press("Home");
        },
      );

      await t.step("a downloaded PNG dropped on the page restores its settings", async () => {
        for (const [id, v] of [["size", "100"], ["iters", "3"], ["strength", "5"], ["seed", "4"]]) {
          await page.$eval(`#${id}`, (el, v) => (el as HTMLInputElement).value = v, v);
        }
        await dropFile(page, "header h1", pagePng);
        const s = await waitForState(page, ["idle", "error"], 10_000, (s) => s.text !== "");
        assert.match(s.text, /^restored the settings of page\.png \(content chelsea\.png/);
        const values = await page.$$eval(
          "#size, #iters, #strength, #seed",
          (els) => els.map((el) => (el as HTMLInputElement).value),
        );
        assert.deepEqual(values, ["64", "10", "1", "0"]);
      });

      await t.step(
        "the page answers during a run, and Stop stops it and offers the image so far",
        async () => {
          await startRun(page, { iters: 5000 });
          await waitForState(page, ["running"], 60_000, (s) => /^iteration [3-9]/.test(s.text));
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
          assert.equal(await page.$eval("#download", (a) => a.hasAttribute("href")), false);
          await startRun(page, { content: CONTENT, iters: 3 });
          const good = await waitForState(page, ["done", "error"], RUN_TIMEOUT_MS);
          assert.equal(good.state, "done", good.text);
        },
      );

      await t.step("a size the adapter cannot hold gives a clear error", async () => {
        await startRun(page, { size: 100_000, iters: 3 });
        const s = await waitForState(page, ["done", "error"], 30_000);
        assert.equal(s.state, "error");
        assert.match(s.text, /too large for this GPU.*use a smaller output size \(Output size\)$/);
      });

      await t.step("a 512-px run: no main-thread task over 50 ms after it starts", async () => {
        await observeLongTasks(page);
        const since = await pageNow(page);
        await startRun(page, { size: 512, minSize: 512, styleSize: 256, iters: 9 });
        const s = await waitForState(page, ["done", "error"], RUN_TIMEOUT_MS);
        assert.equal(s.state, "done", s.text);
        assert.match(s.text, /512×341$/);
        const long = await longTasksSince(page, since);
        console.log(`512-px run: ${s.text}; long tasks: ${JSON.stringify(long)}`);
        assert.deepEqual(long, []);
        // The observer does see a long task (so the bound above can fail).
        const busy = await pageNow(page);
        await page.evaluate(() =>
          new Promise<void>((done) =>
            setTimeout(() => {
              const end = performance.now() + 80;
              while (performance.now() < end) { /* a long task */ }
              done();
            })
          )
        );
        await page.evaluate(() => new Promise((r) => setTimeout(r, 100)));
        assert.equal((await longTasksSince(page, busy)).length, 1);
      });

      await t.step("a 2048-px run finishes in tiles, the size the hint said it holds", async () => {
        const hint = await page.$eval("#size-hint", (el) => el.textContent ?? "");
        const m = /up to (\d+) px for this 336×224 image \(in tiles from (\d+) px\)/.exec(hint);
        assert.ok(m, hint);
        const [max, tilesFrom] = [Number(m[1]), Number(m[2])];
        assert.ok(tilesFrom <= 2048 && 2048 <= max, hint);
        assert.equal(await page.$eval("#size", (el) => (el as HTMLInputElement).max), String(max));
        await startRun(page, {
          size: 2048,
          minSize: 2048,
          styleSize: 256,
          iters: 1,
          stageEvery: 0,
        });
        const s = await waitForState(page, ["done", "error"], RUN_TIMEOUT_MS);
        console.log(`2048-px run: ${s.text}`);
        assert.equal(s.state, "done", s.text);
        const tiles = /2048×1365 in (\d+) tiles$/.exec(s.text);
        assert.ok(tiles && Number(tiles[1]) >= 2, s.text);
        const img = await decodeImage(await downloaded(page), "download");
        assert.deepEqual([img.width, img.height], [2048, 1365]);
      });

      const starry = await stylePng(dir, "starry_night.jpg", "starry.png");
      const maskFiles = [join(dir, "mask-1.png"), join(dir, "mask-2.png")];
      let maskedLoss = NaN;
      await t.step(
        "regions painted with the mouse are the masks exported; a run with them ends on the CLI's loss with those files (1%)",
        async () => {
          const t0 = performance.now();
          await (await page.$("input#content"))!.uploadFile(CONTENT);
          await (await page.$("input#style"))!.uploadFile(starry, style);
          await page.click("#regions");
          const hint = () => page.$eval("#regions-hint", (el) => el.textContent ?? "");
          await page.waitForFunction(() =>
            document.getElementById("regions-hint")!.textContent!.startsWith("Nothing painted")
          );
          const { width: w, height: h } = chelsea;
          const [size, softness] = await page.$$eval(
            "#brush-size, #brush-softness",
            (els) => els.map((el) => Number((el as HTMLInputElement).value)),
          );
          const radius = Math.max(w, h) * size / 200;
          const brush = { radius, core: radius * (1 - softness / 100) };
          // A mask file dropped on the image is the selected style's, as the CLI reads it; Clear.
          await dropFile(page, "#preview-stack", testImage("chelsea_cat.png"));
          await page.waitForFunction(() =>
            /^style 1 \(red\): \d+% of the image; style 2 \(blue\): nowhere/.test(
              document.getElementById("regions-hint")!.textContent!,
            )
          );
          await page.waitForFunction(() =>
            document.getElementById("download-mask")!.getAttribute("aria-disabled") === "false"
          );
          const dropped = await decodeImage(await downloaded(page, "download-mask"), "mask");
          assert.deepEqual(dropped, await readImage(testImage("chelsea_cat.png")));
          await page.click("#mask-clear");
          assert.match(await hint(), /^Nothing painted/);
          assert.ok((await overlayAlpha(page, 0)).every((a) => a === 0));
          // Style 1: two segments; style 2: one, and the eraser's dab on it.
          const paths: Path[] = [[[0.1, 0.25], [0.45, 0.75], [0.3, 0.9]], [[0.6, 0.15], [
            0.9,
            0.85,
          ]]];
          const erased: Path = [[0.75, 0.5]];
          await dragOver(page, await previewBox(page), paths[0]);
          await page.select("#mask-style", "1");
          await dragOver(page, await previewBox(page), paths[1]);
          await page.click("#eraser");
          await dragOver(page, await previewBox(page), erased);
          await page.click("#eraser");
          assert.match(
            await hint(),
            /^style 1 \(red\): \d+% of the image; style 2 \(blue\): \d+% of the image\./,
          );
          for (const k of [0, 1]) {
            await page.select("#mask-style", String(k));
            await page.waitForFunction(() =>
              document.getElementById("download-mask")!.getAttribute("aria-disabled") === "false"
            );
            const png = await downloaded(page, "download-mask");
            assert.deepEqual([png[24], png[25]], [8, 0], "an 8-bit grayscale PNG");
            await Deno.writeFile(maskFiles[k], png);
            const mask = await decodeImage(png, `mask ${k + 1}`);
            assert.deepEqual([mask.width, mask.height], [w, h]);
            const counts = checkMask(mask, paths[k], k === 1 ? erased : null, brush);
            console.log(`mask ${k + 1}: ${JSON.stringify(counts)} pixels checked`);
            assert.ok(counts.inside > 500 && counts.outside > 10_000, JSON.stringify(counts));
            // The overlay shows the region: coloured exactly where the mask is.
            const alpha = await overlayAlpha(page, k);
            assert.equal(alpha.length, w * h);
            alpha.forEach((a, i) =>
              assert.equal(a > 0, mask.data[3 * i] > 0, `overlay pixel ${i}`)
            );
          }
          await startRun(page, { size: 64, minSize: 64, styleSize: 64, iters: 40, stageEvery: 8 });
          const s = await waitForState(page, ["done", "error"], RUN_TIMEOUT_MS);
          assert.equal(s.state, "done", s.text);
          maskedLoss = s.loss;
          const png = await downloaded(page);
          const pngPath = join(dir, "masked.png");
          await Deno.writeFile(pngPath, png);
          const record = parseRunRecord(readPngText(png, RECORD_KEYWORD)!, "masked.png");
          assert.deepEqual([record.styles, record.masks], [["starry.png", "hubble.png"], true]);
          const cli = await cliFinalLoss(dir, [
            CONTENT,
            starry,
            style,
            "--settings-from",
            pngPath,
            "--style-masks",
            maskFiles.join(","),
            "-o",
            join(dir, "cli-masked.png"),
            "--save-every",
            "8",
          ]);
          console.log(`masked run, final loss: page ${s.loss}, CLI ${cli}`);
          assert.ok(Math.abs(s.loss - cli) <= 0.01 * Math.abs(cli), `page ${s.loss}, CLI ${cli}`);
          // The stages strip shows each style beside its mask, as the CLI's sheet.
          const sheet = await decodeImage(await downloaded(page, "download-stages"), "stages");
          const d = difference(sheet, await readImage(join(dir, "cli-masked-stages.png")));
          assert.ok(d.max <= 4, JSON.stringify(d));
          console.log(`regions step: ${((performance.now() - t0) / 1000).toFixed(1)} s`);
        },
      );

      await t.step(
        "the GPU process crashed during a run: a new device, a notice, and the run ends on the uninterrupted loss (1e-3)",
        async () => {
          assert.ok(Number.isFinite(maskedLoss), "needs the masked run");
          const t0 = performance.now();
          await startRun(page, {});
          const at = await waitForState(
            page,
            ["running", "done", "error"],
            RUN_TIMEOUT_MS,
            (s) => s.state !== "running" || Number(/^iteration (\d+)/.exec(s.text)?.[1]) >= 12,
          );
          assert.equal(at.state, "running", `the run ended before the crash: ${at.text}`);
          const cdp = await browser.target().createCDPSession();
          await cdp.send("Browser.crashGpuProcess");
          await cdp.detach();
          const s = await waitForState(page, ["done", "error"], RUN_TIMEOUT_MS);
          const notices = await page.$$eval("#notices li", (els) => els.map((e) => e.textContent));
          console.log(`crashed at "${at.text}"; ${s.text}; notices: ${JSON.stringify(notices)}`);
          assert.equal(s.state, "done", s.text);
          assert.match(s.text, /^done: 40 iterations/);
          assert.ok(
            notices.some((n) =>
              /^GPU device lost .*; resumed on a new device at iteration \d+$/.test(n!)
            ),
            JSON.stringify(notices),
          );
          const rel = Math.abs(s.loss - maskedLoss) / maskedLoss;
          assert.ok(rel <= 1e-3, `loss ${s.loss}, uninterrupted ${maskedLoss} (${rel})`);
          console.log(
            `crash step: ${((performance.now() - t0) / 1000).toFixed(1)} s, loss off by ${rel}`,
          );
        },
      );

      await t.step(
        "a 1024-px run (one scale, 2 iterations) finishes, each iteration cut into submits",
        async () => {
          const t0 = performance.now();
          await startRun(page, {
            content: CONTENT,
            styles: [style],
            size: 1024,
            minSize: 1024,
            styleSize: 256,
            iters: 2,
            stageEvery: 0,
          });
          const s = await waitForState(page, ["done", "error"], RUN_TIMEOUT_MS);
          const longest = await page.$eval(
            "#status",
            (el) => (el as HTMLElement).dataset.longestSubmitMs,
          );
          console.log(
            `1024-px run: ${s.text}; longest submit ${longest} ms; ` +
              `${((performance.now() - t0) / 1000).toFixed(1)} s`,
          );
          assert.equal(s.state, "done", s.text);
          assert.match(s.text, /^done: 2 iterations .* 1024×683$/);
        },
      );

      await t.step(
        "Max GPU memory: the page says it holds less, and refuses a size over it",
        async () => {
          const held = async () => {
            const text = await page.$eval("#size-hint", (el) => el.textContent ?? "");
            return Number(/up to (\d+) px/.exec(text)?.[1]);
          };
          const setCap = (v: string) =>
            page.$eval("#max-gpu-memory", (el, v) => {
              (el as HTMLInputElement).value = v;
              el.dispatchEvent(new Event("change"));
            }, v);
          const before = await held();
          await setCap("400M");
          await page.waitForFunction(
            (before) =>
              !document.getElementById("size-hint")!.textContent!.includes(`${before} px`),
            { timeout: 30_000 },
            before,
          );
          const capped = await held();
          console.log(`held: ${before} px, under 400M ${capped} px`);
          assert.ok(capped > 16 && capped < before, `${capped} vs ${before}`);
          assert.equal(
            await page.$eval("#size", (el) => (el as HTMLInputElement).max),
            String(capped),
          );
          await startRun(page, { size: capped + 200, iters: 1 });
          const s = await waitForState(page, ["done", "error"], 30_000);
          assert.equal(s.state, "error");
          assert.match(s.text, /over the 0\.4 GiB it may use/);
          await setCap("");
          await page.waitForFunction(
            (before) => document.getElementById("size-hint")!.textContent!.includes(`${before} px`),
            { timeout: 30_000 },
            before,
          );
        },
      );

      await t.step(
        "every control has a label and Tab reaches it; a run with the keyboard alone",
        async () => {
          assert.deepEqual(await unlabelled(page, CONTROLS), []);
          await tabTo(page, "content");
          const chooser = (path: string) =>
            Promise.all([page.waitForFileChooser(), page.keyboard.press("Space")])
              .then(([c]) => c.accept([path]));
          await chooser(CONTENT);
          await tabTo(page, "style");
          await chooser(style);
          for (const [id, v] of [["size", "64"], ["iters", "3"]]) {
            await tabTo(page, id);
            await page.keyboard.down("Control");
            await page.keyboard.press("KeyA");
            await page.keyboard.up("Control");
            await page.keyboard.type(v);
          }
          await tabTo(page, "start");
          await page.keyboard.press("Enter");
          const s = await waitForState(page, ["done", "error"], RUN_TIMEOUT_MS);
          assert.equal(s.state, "done", s.text);
          assert.match(s.text, /done: 3 iterations/);
          assert.match(s.text, new RegExp(`${w64}×${h64}$`));
          // "More" (and "Regions", if closed) open from the keyboard; then Tab reaches every
          // control (Stop is disabled now).
          await tabTo(page, "more");
          await page.keyboard.press("Enter");
          if (!await page.$eval("#regions-box", (d) => (d as HTMLDetailsElement).open)) {
            await tabTo(page, "regions");
            await page.keyboard.press("Enter");
          }
          const order = await tabOrder(page);
          const missing = CONTROLS.filter((id) => id !== "stop" && !order.includes(id));
          assert.deepEqual(missing, [], `Tab order: ${order.join(", ")}`);
        },
      );

      await t.step("at 390 px wide nothing overflows (screenshot in the test output)", async () => {
        await page.setViewport({ width: 390, height: 844 });
        await page.evaluate(() => new Promise((r) => requestAnimationFrame(r)));
        assert.deepEqual(await overflowing(page, 390), []);
        await Deno.mkdir(OUTPUT, { recursive: true });
        const shot = join(OUTPUT, "page-390.png");
        await page.screenshot({ path: shot as `${string}.png`, fullPage: true });
        console.log(`screenshot: ${shot}`);
        await page.setViewport({ width: 800, height: 600 });
      });

      await t.step("without WebGPU the page says so and keeps working", async () => {
        const bare = await browser.newPage();
        await bare.evaluateOnNewDocument(() => {
          Object.defineProperty(Navigator.prototype, "gpu", { get: () => undefined });
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
        await startRun(bare, { content: CONTENT, styles: [style], size: 64, iters: 2 });
        const again = await waitForState(bare, ["error"], 30_000);
        assert.match(again.text, /WebGPU is not available/);
        assert.deepEqual(pageErrors, []);
        await bare.close();
      });

      await t.step("a reload takes the weights from Cache Storage", async () => {
        await page.reload({ waitUntil: "load" });
        await waitForState(page, ["idle"], 60_000, ready);
        assert.equal(weightsFetches(site.requests), 1);
        assert.deepEqual(errors, []);
      });

      await t.step("with the network off, a reload loads the page and a run works", async () => {
        const controlled = await page.evaluate(async () => {
          await navigator.serviceWorker.ready;
          return navigator.serviceWorker.controller !== null;
        });
        assert.ok(controlled, "the service worker does not control the page");
        await site.stopServer();
        try {
          const before = site.requests.length;
          await page.reload({ waitUntil: "load" });
          await waitForState(page, ["idle"], 60_000, ready);
          await assert.rejects(fetch(site.url), TypeError);
          await startRun(page, { content: CONTENT, styles: [style], size: 64, iters: 3 });
          const s = await waitForState(page, ["done", "error"], RUN_TIMEOUT_MS);
          assert.equal(s.state, "done", s.text);
          assert.equal(site.requests.length, before, "the server answered while stopped");
        } finally {
          site.restartServer();
        }
        assert.deepEqual(errors, []);
      });
    } finally {
      await browser.close();
      await site.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
