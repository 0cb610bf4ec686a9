/**
 * What the page tests read and do in the browser beyond the form: the bytes
 * behind a download link, a canvas's pixels, long tasks on the main thread,
 * keyboard focus, overflow at a narrow width, and files dropped on the page.
 * @module
 */
import assert from "node:assert/strict";
import type { Page } from "puppeteer-core";
import type { RgbImage } from "../../src/engine/image/types.ts";

/** The bytes behind the link `#id`'s href. */
export async function downloaded(page: Page, id = "download"): Promise<Uint8Array> {
  const bytes = await page.$eval(`#${id}`, async (a) => {
    const href = (a as HTMLAnchorElement).getAttribute("href");
    if (!href) return null;
    return Array.from(new Uint8Array(await (await fetch(href)).arrayBuffer()));
  });
  assert.ok(bytes, `#${id} has no href`);
  return new Uint8Array(bytes);
}

/** The RGB pixels of the canvas `#id`. */
export async function canvasPixels(page: Page, id: string): Promise<RgbImage> {
  const r = await page.$eval(`#${id}`, (c) => {
    const canvas = c as HTMLCanvasElement;
    const d = canvas.getContext("2d")!.getImageData(0, 0, canvas.width, canvas.height).data;
    const rgb = [];
    for (let i = 0; i < d.length; i += 4) rgb.push(d[i], d[i + 1], d[i + 2]);
    return { width: canvas.width, height: canvas.height, data: rgb };
  });
  return { width: r.width, height: r.height, data: new Uint8Array(r.data) };
}

/** Columns [x0, x1) of an image. */
export function columns(img: RgbImage, x0: number, x1: number): RgbImage {
  const w = x1 - x0;
  const data = new Uint8Array(w * img.height * 3);
  for (let y = 0; y < img.height; y++) {
    data.set(img.data.subarray((y * img.width + x0) * 3, (y * img.width + x1) * 3), y * w * 3);
  }
  return { width: w, height: img.height, data };
}

/** A main-thread task longer than 50 ms, as the Long Tasks API reports it. */
export interface LongTask {
  start: number;
  duration: number;
}

/** Starts recording the page's long tasks (a `PerformanceObserver` of type "longtask"). */
export async function observeLongTasks(page: Page): Promise<void> {
  await page.evaluate(() => {
    const w = globalThis as unknown as { longTasks: { start: number; duration: number }[] };
    w.longTasks = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        w.longTasks.push({ start: e.startTime, duration: e.duration });
      }
    }).observe({ type: "longtask" });
  });
}

/** The page's clock now (performance.now()). */
export function pageNow(page: Page): Promise<number> {
  return page.evaluate(() => performance.now());
}

/** The long tasks recorded since `since` (the page's clock). */
export function longTasksSince(page: Page, since: number): Promise<LongTask[]> {
  return page.evaluate(
    (since) =>
      (globalThis as unknown as { longTasks: { start: number; duration: number }[] }).longTasks
        .filter((t) => t.start >= since),
    since,
  );
}

/** The id of the focused element ("" for none). */
export function focusedId(page: Page): Promise<string> {
  return page.evaluate(() => document.activeElement?.id ?? "");
}

/** Presses Tab until `#id` has the focus (at most `max` times). */
export async function tabTo(page: Page, id: string, max = 60): Promise<void> {
  for (let k = 0; k < max; k++) {
    if (await focusedId(page) === id) return;
    await page.keyboard.press("Tab");
  }
  assert.equal(await focusedId(page), id, `Tab never reached #${id}`);
}

/** The ids Tab visits, in order, once round the page (from the top). */
export async function tabOrder(page: Page, max = 80): Promise<string[]> {
  await page.evaluate(() => (document.activeElement as HTMLElement | null)?.blur());
  const seen: string[] = [];
  for (let k = 0; k < max; k++) {
    await page.keyboard.press("Tab");
    const id = await focusedId(page);
    if (seen.length && id === seen[0]) break;
    seen.push(id);
  }
  return seen;
}

/** The ids of `ids` whose element has no label (a <label>, aria-label or aria-labelledby). */
export function unlabelled(page: Page, ids: string[]): Promise<string[]> {
  return page.evaluate((ids) =>
    ids.filter((id) => {
      const el = document.getElementById(id) as HTMLInputElement | null;
      if (!el) return true;
      const text = (el.labels?.[0]?.textContent ?? "").trim() ||
        (el.getAttribute("aria-label") ?? "").trim() || el.textContent?.trim();
      return !text;
    }), ids);
}

/**
 * The elements reaching past `width` (CSS px) or making the page scroll
 * sideways, outside horizontally scrolling boxes; described for the message.
 */
export function overflowing(page: Page, width: number): Promise<string[]> {
  return page.evaluate((width) => {
    const out: string[] = [];
    const doc = document.documentElement;
    if (doc.scrollWidth > width) out.push(`the page scrolls to ${doc.scrollWidth} px`);
    for (const el of document.body.querySelectorAll("*")) {
      if (el.closest(".strip") && !el.classList.contains("strip")) continue;
      const r = el.getBoundingClientRect();
      if (r.width > 0 && r.right > width + 0.5) {
        out.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className} ends at ${r.right}`);
      }
    }
    return out;
  }, width);
}

/** Drops the file at `path` on the page at the centre of `selector`, as a person drags it in. */
export async function dropFile(page: Page, selector: string, path: string): Promise<void> {
  const el = (await page.$(selector))!;
  await el.scrollIntoView();
  const box = await el.boundingBox();
  assert.ok(box, `${selector} is not shown`);
  const at = { x: box.x + box.width / 2, y: box.y + box.height / 2 };
  const data = { items: [], files: [path], dragOperationsMask: 1 };
  await page.mouse.dragEnter(at, data);
  await page.mouse.dragOver(at, data);
  await page.mouse.drop(at, data);
}

/** The preview's image on screen (its content box, CSS px of the viewport), scrolled into view. */
export async function previewBox(
  page: Page,
): Promise<{ left: number; top: number; width: number; height: number }> {
  await (await page.$("#preview"))!.scrollIntoView();
  return page.$eval("#preview", (el) => {
    const c = el as HTMLCanvasElement;
    const r = c.getBoundingClientRect();
    return {
      left: r.left + c.clientLeft,
      top: r.top + c.clientTop,
      width: c.clientWidth,
      height: c.clientHeight,
    };
  });
}

/**
 * Drags the mouse over the preview along `path` (points as fractions of its
 * image: [0, 0] top left, [1, 1] bottom right), button down, `steps` moves
 * per segment; one point is a click.
 */
export async function dragOver(
  page: Page,
  box: { left: number; top: number; width: number; height: number },
  path: [number, number][],
  steps = 8,
): Promise<void> {
  const at = ([fx, fy]: [number, number]) => [box.left + fx * box.width, box.top + fy * box.height];
  const [x0, y0] = at(path[0]);
  await page.mouse.move(x0, y0);
  await page.mouse.down();
  for (const p of path.slice(1)) {
    const [x, y] = at(p);
    await page.mouse.move(x, y, { steps });
  }
  await page.mouse.up();
}

/** The alpha channel of the `k`th region overlay canvas over the preview. */
export async function overlayAlpha(page: Page, k: number): Promise<Uint8Array> {
  const a = await page.$$eval("#preview-stack canvas.region", (els, k) => {
    const c = els[k] as HTMLCanvasElement;
    const d = c.getContext("2d")!.getImageData(0, 0, c.width, c.height).data;
    const out = [];
    for (let i = 3; i < d.length; i += 4) out.push(d[i]);
    return out;
  }, k);
  return new Uint8Array(a);
}
