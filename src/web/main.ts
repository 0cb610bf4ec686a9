/**
 * The page's main thread: it draws and handles input, nothing else. The
 * engine, the images' decoding and the previews' conversion run in a module
 * worker (./worker.ts, messages in ./protocol.ts); the form, the drop zones,
 * Start and Stop, the preview and the before/after slider, the regions
 * painted over it (./regions.ts), the stages strip, the loss plot, the
 * notices, the downloads and the settings restored from a PNG are wired
 * here; a service worker (./sw.ts) keeps the page's files for offline
 * visits.
 * @module
 */
import { UserError } from "../engine/errors.ts";
import { readPngText } from "../engine/image/png_text.ts";
import type { IterationRecord } from "../engine/model/optimize.ts";
import { parseRunRecord, RECORD_KEYWORD } from "../engine/model/run_record.ts";
import { drawBitmap } from "./canvas.ts";
import { type ComparePair, drawCompare } from "./compare.ts";
import { onFormChange, readForm, writeForm } from "./form.ts";
import { drawPlot } from "./plot.ts";
import type { FromWorker, ToWorker } from "./protocol.ts";
import { Regions } from "./regions.ts";
import type { ScaleInfo, SizeLimits } from "./run.ts";
import { DEFAULT_FORM, formFromRecord, parseSettings, type RunSettings } from "./settings.ts";
import { NO_WEBGPU_HINT, pageMessage, type PageState, setStatus } from "./status.ts";

/** The element with id `id`. */
function $<T extends HTMLElement>(id: string): T {
  return document.getElementById(id) as T;
}

const ui = {
  content: $<HTMLInputElement>("content"),
  style: $<HTMLInputElement>("style"),
  settingsFile: $<HTMLInputElement>("settings-file"),
  form: $<HTMLFormElement>("form"),
  size: $<HTMLInputElement>("size"),
  sizeHint: $<HTMLElement>("size-hint"),
  start: $<HTMLButtonElement>("start"),
  stop: $<HTMLButtonElement>("stop"),
  preview: $<HTMLCanvasElement>("preview"),
  compare: $<HTMLInputElement>("compare"),
  stages: $<HTMLCanvasElement>("stages"),
  plot: $<HTMLCanvasElement>("plot"),
  download: $<HTMLAnchorElement>("download"),
  downloadStages: $<HTMLAnchorElement>("download-stages"),
  status: $<HTMLElement>("status"),
  notices: $<HTMLUListElement>("notices"),
  rate: $<HTMLElement>("rate"),
  adapter: $<HTMLElement>("adapter"),
};

/** The worker, or null where the browser has no WebGPU. */
let worker: Worker | null = null;

/** What the current (or last) run has shown. */
const run = {
  active: false,
  started: 0,
  total: 0,
  scale: null as ScaleInfo | null,
  records: [] as IterationRecord[],
  plotQueued: false,
  /** The content at the output size, then with the result: the compare view. */
  before: null as ImageBitmap | null,
  pair: null as ComparePair | null,
  /** Why the device was lost during the run, if it was. */
  lost: null as string | null,
};

const urls = { download: null as string | null, stages: null as string | null };

function status(state: PageState, text: string, loss?: number): void {
  setStatus(ui.status, state, text, loss);
}

function post(m: ToWorker): void {
  worker?.postMessage(m);
}

/** The regions painted over the preview (mask files are decoded by the worker). */
const regions = new Regions({
  box: $<HTMLDetailsElement>("regions-box"),
  stack: $<HTMLElement>("preview-stack"),
  preview: ui.preview,
  style: $<HTMLSelectElement>("mask-style"),
  size: $<HTMLInputElement>("brush-size"),
  softness: $<HTMLInputElement>("brush-softness"),
  eraser: $<HTMLInputElement>("eraser"),
  clear: $<HTMLButtonElement>("mask-clear"),
  file: $<HTMLInputElement>("mask-file"),
  download: $<HTMLAnchorElement>("download-mask"),
  hint: $<HTMLElement>("regions-hint"),
}, (file, index) => post({ type: "mask", file, index }));

/** The most notices shown (the oldest go first). */
const MAX_NOTICES = 5;

/** Adds a one-line notice (a device lost and the run resumed, a plan retried). */
function addNotice(text: string): void {
  const li = document.createElement("li");
  li.textContent = text;
  ui.notices.append(li);
  while (ui.notices.children.length > MAX_NOTICES) ui.notices.firstElementChild!.remove();
}

/** The form's settings, or null when a field is not valid (the run will say which). */
function settingsOrNull(): RunSettings | null {
  try {
    return parseSettings(readForm());
  } catch {
    return null;
  }
}

/** A link offering `blob` (or nothing). */
function offer(a: HTMLAnchorElement, key: keyof typeof urls, blob: Blob | null): void {
  if (urls[key]) URL.revokeObjectURL(urls[key]!);
  urls[key] = blob ? URL.createObjectURL(blob) : null;
  if (urls[key]) a.href = urls[key]!;
  else a.removeAttribute("href");
  a.setAttribute("aria-disabled", String(!blob));
}

/** Redraws the loss plot on the next frame (once per frame). */
function queuePlot(): void {
  if (run.plotQueued) return;
  run.plotQueued = true;
  requestAnimationFrame(() => {
    run.plotQueued = false;
    drawPlot(ui.plot, run.records, run.total);
  });
}

/** "2048×1365 in 2 tiles" (or just the size). */
function sizeText(s: ScaleInfo): string {
  return `${s.w}×${s.h}${s.tiles > 1 ? ` in ${s.tiles} tiles` : ""}`;
}

/** The size field's hint: what the adapter holds for this content. */
function showLimits(m: Extract<FromWorker, { type: "limits" }>): void {
  const l: SizeLimits = m.limits;
  if (l.maxSize > 0) ui.size.max = String(l.maxSize);
  else ui.size.removeAttribute("max");
  const shape = m.width === 4 && m.height === 3
    ? "a 4:3 image"
    : `this ${m.width}×${m.height} image`;
  ui.sizeHint.textContent = l.maxSize === 0
    ? `This GPU cannot hold ${shape}.`
    : `This GPU holds up to ${l.maxSize} px for ${shape}` +
      (l.tilesFrom ? ` (in tiles from ${l.tilesFrom} px).` : ".");
}

/** Ends the run's UI state. */
function endRun(): void {
  run.active = false;
  ui.start.disabled = false;
  ui.stop.disabled = true;
}

/** The result arrived: the compare view, the stages, the downloads and the status. */
function finished(m: Extract<FromWorker, { type: "done" }>): void {
  endRun();
  run.pair = { before: run.before ?? m.bitmap, after: m.bitmap };
  ui.compare.disabled = false;
  drawCompare(ui.preview, run.pair, Number(ui.compare.value) / 100);
  drawBitmap(ui.stages, m.stages);
  ui.stages.hidden = false;
  drawPlot(ui.plot, run.records, m.total);
  offer(ui.download, "download", m.png);
  offer(ui.downloadStages, "stages", m.stagesPng);
  const secs = ((performance.now() - run.started) / 1000).toFixed(1);
  const what = m.steps < m.total
    ? `stopped after ${m.steps} of ${m.total} iterations`
    : `done: ${m.steps} iterations`;
  const last = run.records.at(-1);
  ui.status.dataset.longestSubmitMs = m.longestSubmitMs.toFixed(1);
  const tiles = m.tiles > 1 ? ` in ${m.tiles} tiles` : "";
  if (m.failed) {
    return status(
      "error",
      `${m.failed}; the last good image (${m.steps} of ${m.total} iterations) is offered below`,
      last?.loss,
    );
  }
  status(
    "done",
    `${what} in ${secs} s, final loss ${last?.loss.toExponential(4)}; ` +
      `${m.bitmap.width}×${m.bitmap.height}${tiles}`,
    last?.loss,
  );
}

/** A message from the worker. */
function onMessage(m: FromWorker): void {
  switch (m.type) {
    case "progress":
      if (run.active) status("running", m.message);
      else if (ui.status.dataset.state === "idle") status("idle", m.message);
      return;
    case "ready":
      ui.adapter.textContent = `adapter: ${m.adapter}`;
      if (!run.active && ui.status.dataset.state === "idle") {
        status("idle", "ready: choose a content image and style images, then Start");
      }
      return;
    case "failed":
      if (run.active) run.lost = m.message;
      else status("error", m.user ? pageMessage(m) : `internal error: ${m.message}`);
      return;
    case "notice":
      return addNotice(m.message);
    case "mask":
      if (m.mask) regions.setMask(m.index, m.mask);
      else if (run.active) addNotice(m.message ?? "not a mask image");
      else status("error", m.message ?? "not a mask image");
      return;
    case "content":
      regions.setContent(m.width, m.height);
      if (!run.active && m.bitmap) {
        run.pair = null;
        ui.compare.disabled = true;
        drawBitmap(ui.preview, m.bitmap);
      }
      return;
    case "limits":
      return showLimits(m);
    case "started":
      run.before = m.bitmap;
      run.total = m.total;
      drawBitmap(ui.preview, m.bitmap);
      return;
    case "scale":
      run.scale = m.scale;
      status(
        "running",
        `${m.scale.count > 1 ? `scale ${m.scale.index + 1}/${m.scale.count}, ` : ""}` +
          `${sizeText(m.scale)}: the first iteration`,
      );
      return;
    case "record": {
      const r = m.record;
      run.records.push(r);
      const tag = m.scale.count > 1 ? `scale ${m.scale.index + 1}/${m.scale.count}, ` : "";
      status(
        "running",
        `${tag}iteration ${r.i + 1}/${run.total}, loss ${r.loss.toExponential(3)}`,
        r.loss,
      );
      ui.rate.textContent = m.rate;
      return queuePlot();
    }
    case "preview":
      if (run.active) drawBitmap(ui.preview, m.bitmap);
      return;
    case "done":
      return finished(m);
    case "error": {
      endRun();
      const text = run.lost ?? (m.user ? pageMessage(m) : `internal error: ${m.message}`);
      status("error", text);
      return;
    }
  }
}

/** Start: one run, handed to the worker. */
function start(): void {
  if (run.active) return;
  if (!worker) return status("error", NO_WEBGPU_HINT);
  let settings: RunSettings;
  try {
    settings = parseSettings(readForm());
    const c = ui.content.files?.[0];
    const s = [...(ui.style.files ?? [])];
    if (!c) throw new UserError("choose a content image");
    if (s.length === 0) throw new UserError("choose at least one style image");
    Object.assign(run, {
      active: true,
      started: performance.now(),
      total: 0,
      scale: null,
      records: [],
      before: null,
      pair: null,
      lost: null,
    });
    ui.notices.replaceChildren();
    ui.start.disabled = true;
    ui.stop.disabled = false;
    ui.compare.disabled = true;
    ui.compare.value = "0";
    ui.rate.textContent = "";
    offer(ui.download, "download", null);
    offer(ui.downloadStages, "stages", null);
    status("running", "reading the images");
    post({ type: "run", content: c, styles: s, settings, masks: regions.forRun() });
  } catch (e) {
    status("error", e instanceof UserError ? pageMessage(e) : `internal error: ${e}`);
  }
}

/** Restores the form from a PNG's stylize settings. */
async function restore(file: File): Promise<void> {
  try {
    const text = readPngText(new Uint8Array(await file.arrayBuffer()), RECORD_KEYWORD);
    if (text === null) {
      throw new UserError(
        `${file.name}: no stylize settings in it (a PNG made by stylize has them)`,
      );
    }
    const record = parseRunRecord(text, file.name);
    const { form, ignored, masks } = formFromRecord(record);
    writeForm(form);
    post({ type: "limits", settings: settingsOrNull() });
    if (run.active) return;
    status(
      "idle",
      `restored the settings of ${file.name} (content ${record.content}, style ` +
        `${record.styles.join(", ")})` +
        (ignored.length ? `; the page cannot set: ${ignored.join("; ")}` : "") +
        (masks ? "; it had style masks: paint the regions or give the mask files" : "") +
        "; choose the images, then Start",
    );
  } catch (e) {
    if (run.active) return;
    status("error", e instanceof UserError ? pageMessage(e) : `internal error: ${e}`);
  }
}

/** Lets files dropped on `zone` fill `input` (and not restore settings). */
function dropZone(zone: HTMLElement, input: HTMLInputElement): void {
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    e.stopPropagation();
    zone.classList.remove("over");
    const files = e.dataTransfer?.files;
    if (!files?.length) return;
    const dt = new DataTransfer();
    for (const f of input.multiple ? [...files] : [files[0]]) dt.items.add(f);
    input.files = dt.files;
    input.dispatchEvent(new Event("change"));
  });
}

/** A PNG dropped anywhere else on the page restores its settings. */
function settingsDrop(): void {
  document.addEventListener("dragover", (e) => e.preventDefault());
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    const file = e.dataTransfer?.files?.[0];
    if (file) restore(file);
  });
}

/** The worker, with WebGPU; null (and the reason in the status) without. */
function startWorker(): Worker | null {
  if (!("gpu" in navigator) || !navigator.gpu) {
    status("error", NO_WEBGPU_HINT);
    return null;
  }
  const w = new Worker(new URL("worker.js", document.baseURI), { type: "module" });
  w.addEventListener("message", (e: MessageEvent<FromWorker>) => onMessage(e.data));
  w.addEventListener("error", (e) => {
    endRun();
    status("error", `internal error: the worker failed (${e.message})`);
  });
  w.postMessage({ type: "init", base: document.baseURI } satisfies ToWorker);
  return w;
}

function init(): void {
  writeForm(DEFAULT_FORM);
  ($<HTMLInputElement>("style-size")).placeholder = "as output";
  ($<HTMLInputElement>("first-iters")).placeholder = "2 × iterations";
  dropZone(ui.content.closest("label")!, ui.content);
  dropZone(ui.style.closest("label")!, ui.style);
  settingsDrop();
  ui.form.addEventListener("submit", (e) => {
    e.preventDefault();
    start();
  });
  ui.stop.addEventListener("click", () => post({ type: "stop" }));
  ui.style.addEventListener("change", () => {
    regions.setStyles([...(ui.style.files ?? [])].map((f) => f.name));
  });
  ui.content.addEventListener("change", () => {
    post({ type: "content", file: ui.content.files?.[0] ?? null, settings: settingsOrNull() });
  });
  ui.settingsFile.addEventListener("change", () => {
    const f = ui.settingsFile.files?.[0];
    if (f) restore(f);
  });
  ui.compare.addEventListener("input", () => {
    if (run.pair) drawCompare(ui.preview, run.pair, Number(ui.compare.value) / 100);
  });
  onFormChange(() => post({ type: "limits", settings: settingsOrNull() }));
  offer(ui.download, "download", null);
  offer(ui.downloadStages, "stages", null);
  status("idle", "loading the weights and the GPU");
  worker = startWorker();
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("sw.js").catch((e) => console.warn(`no offline copy: ${e}`));
  }
}

init();
