/**
 * The same photo gives the same image in the page and the CLI: JPEGs with
 * an EXIF Orientation tag (made here: 3, 6 and 8, and the mirrored ones),
 * decoded by headless Chromium's decoder (the page's src/web/decode.ts) and
 * by the CLI's (src/deno/image/decode.ts), agree in size and pixels within
 * what two JPEG decoders differ by; the tag turned the other way would not.
 * @module
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { decodeImage, encodeImage } from "../../src/deno/image/mod.ts";
import type { RgbImage } from "../../src/engine/image/types.ts";
import { asymmetric, withOrientation } from "../../tests/exif_jpeg.ts";
import { launchBrowser, openPage, startSite } from "./harness.ts";

/** Mean and largest absolute difference of two images of one size. */
function difference(a: RgbImage, b: RgbImage): { mean: number; max: number } {
  let sum = 0, max = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(a.data[i] - b.data[i]);
    sum += d;
    max = Math.max(max, d);
  }
  return { mean: sum / a.data.length, max };
}

const toBase64 = (b: Uint8Array) => btoa(Array.from(b, (c) => String.fromCharCode(c)).join(""));
const fromBase64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));

Deno.test({
  name: "orientation: an EXIF-rotated JPEG gives the same image in the page and the CLI",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const site = await startSite({
      build: { extraEntries: { decode: new URL("./decode_page.ts", import.meta.url).pathname } },
    });
    const browser = await launchBrowser();
    try {
      await Deno.writeTextFile(
        join(site.dir, "decode.html"),
        '<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">' +
          '<script type="module" src="decode.js"></script>\n',
      );
      const { page, errors } = await openPage(browser, `${site.url}decode.html`);
      await page.waitForFunction(() => "decodeForTest" in globalThis);
      const inPage = async (jpeg: Uint8Array): Promise<RgbImage> => {
        const r = await page.evaluate(
          (b64) =>
            (globalThis as unknown as {
              decodeForTest: (
                b: string,
                t: string,
              ) => Promise<{ width: number; height: number; data: string }>;
            }).decodeForTest(b64, "image/jpeg"),
          toBase64(jpeg),
        );
        return { width: r.width, height: r.height, data: fromBase64(r.data) };
      };
      const plain = await encodeImage(asymmetric(), "jpeg", 95);
      for (const o of [1, 2, 3, 4, 5, 6, 7, 8]) {
        const jpeg = withOrientation(plain, o, o !== 6);
        const cli = await decodeImage(jpeg, `o${o}.jpg`);
        const browserImg = await inPage(jpeg);
        assert.deepEqual([browserImg.width, browserImg.height], [cli.width, cli.height], `${o}`);
        const d = difference(browserImg, cli);
        console.log(
          `orientation ${o}: ${cli.width}×${cli.height}, mean ${d.mean.toFixed(3)}, max ${d.max}`,
        );
        assert.ok(d.mean < 0.5 && d.max <= 4, `orientation ${o}: ${JSON.stringify(d)}`);
        // The tag ignored (or read the other way) would be far off.
        if (o === 3) assert.ok(difference(browserImg, await decodeImage(plain, "p.jpg")).mean > 20);
      }
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await site.close();
    }
  },
});
