/**
 * The page: wires the form, the drop zones, Start and Stop, the preview, the
 * loss plot and the download link to one engine, acquired when the page loads
 * and again after a failure or a lost device.
 * @module
 */
import { UserError } from "../engine/errors.ts";
import type { RgbImage } from "../engine/image/types.ts";
import { type IterationRecord, loopRate } from "../engine/model/optimize.ts";
import type { Engine } from "../engine/model/stylizer.ts";
import { drawImage, pngBlob } from "./canvas.ts";
import { decodeImageFile } from "./decode.ts";
import { adapterLabel } from "../engine/gpu/device.ts";
import { createPageEngine } from "./engine.ts";
import { drawPlot } from "./plot.ts";
import { runInPage } from "./run.ts";
import { DEFAULT_FORM, parseSettings, type SettingsForm } from "./settings.ts";
import { pageMessage, type PageState, setStatus } from "./status.ts";

/** The element with id `id`. */
function $<T extends HTMLElement>(id: string): T {
  return document.getElementById(id) as T;
}

const ui = {
  content: $<HTMLInputElement>("content"),
  style: $<HTMLInputElement>("style"),
  form: $<HTMLFormElement>("form"),
  start: $<HTMLButtonElement>("start"),
  stop: $<HTMLButtonElement>("stop"),
  preview: $<HTMLCanvasElement>("preview"),
  plot: $<HTMLCanvasElement>("plot"),
  download: $<HTMLAnchorElement>("download"),
  status: $<HTMLElement>("status"),
  rate: $<HTMLElement>("rate"),
  adapter: $<HTMLElement>("adapter"),
};

/** The settings inputs by form field. */
const FIELDS: Record<keyof SettingsForm, HTMLInputElement> = {
  size: $("size"),
  styleSize: $("style-size"),
  iters: $("iters"),
  strength: $("strength"),
  minSize: $("min-size"),
  lr: $("lr"),
  contentWeight: $("content-weight"),
  tvWeight: $("tv-weight"),
  referencePixels: $("reference-pixels"),
};

let enginePromise: Promise<Engine> | null = null;
let abort: AbortController | null = null;
let downloadUrl: string | null = null;

function status(state: PageState, text: string, loss?: number): void {
  setStatus(ui.status, state, text, loss);
}

/** The engine, acquired on first use; a failure or a lost device makes the next call try again. */
function engine(): Promise<Engine> {
  enginePromise ??= createPageEngine(document.baseURI, (m) => {
    if (ui.status.dataset.state !== "running") status("idle", m);
  }).then((e) => {
    ui.adapter.textContent = `adapter: ${adapterLabel(e.gpu)}`;
    e.gpu.lost.then((m) => {
      enginePromise = null;
      abort?.abort();
      status("error", `${m}; press Start to try again`);
    });
    return e;
  });
  enginePromise.catch(() => enginePromise = null);
  return enginePromise;
}

/** The form's current values. */
function formValues(): SettingsForm {
  const out = {} as SettingsForm;
  for (const [k, el] of Object.entries(FIELDS)) {
    out[k as keyof SettingsForm] = el.value;
  }
  return out;
}

/** Decodes the chosen content and style files. */
async function chosenImages(): Promise<
  { content: RgbImage; styles: RgbImage[] }
> {
  const c = ui.content.files?.[0];
  const s = [...(ui.style.files ?? [])];
  if (!c) throw new UserError("choose a content image");
  if (s.length === 0) throw new UserError("choose at least one style image");
  const content = await decodeImageFile(c, c.name);
  const styles = await Promise.all(s.map((f) => decodeImageFile(f, f.name)));
  return { content, styles };
}

/** Iterations per second after the first iteration (which compiles the kernels). */
function rateText(records: IterationRecord[]): string {
  const first = records[0], last = records.at(-1);
  const speed = first && last ? loopRate(last.i + 1, last.i + 1, last.ms, first.ms) : null;
  return speed ? `${speed.rate.toFixed(2)} it/s` : "";
}

/** Progress of a running run: status, rate and a plot redrawn once per frame. */
function progress() {
  const records: IterationRecord[] = [];
  let total = 0;
  let queued = false;
  const onStart = (n: number) => total = n;
  const onRecord = (r: IterationRecord, scale: { index: number; count: number }) => {
    records.push(r);
    const tag = scale.count > 1 ? `scale ${scale.index + 1}/${scale.count}, ` : "";
    status(
      "running",
      `${tag}iteration ${r.i + 1}/${total}, loss ${r.loss.toExponential(3)}`,
      r.loss,
    );
    ui.rate.textContent = rateText(records);
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      drawPlot(ui.plot, records, total);
    });
  };
  return { records, onStart, onRecord };
}

/** Offers `img` as the download. */
async function offerDownload(img: RgbImage): Promise<void> {
  if (downloadUrl) URL.revokeObjectURL(downloadUrl);
  downloadUrl = URL.createObjectURL(await pngBlob(img));
  ui.download.href = downloadUrl;
  ui.download.setAttribute("aria-disabled", "false");
}

function clearDownload(): void {
  ui.download.removeAttribute("href");
  ui.download.setAttribute("aria-disabled", "true");
}

/** Start: one run, from reading the form to the download link. */
async function start(): Promise<void> {
  if (abort) return;
  abort = new AbortController();
  ui.start.disabled = true;
  ui.stop.disabled = false;
  clearDownload();
  ui.rate.textContent = "";
  try {
    status("running", "reading the images");
    const settings = parseSettings(formValues());
    const { content, styles } = await chosenImages();
    const eng = await engine();
    status("running", "computing the style targets (a first run also compiles the kernels)");
    const { records, onStart, onRecord } = progress();
    const t0 = performance.now();
    const result = await runInPage(eng, content, styles, settings, {
      signal: abort.signal,
      onStart: (img, total) => {
        onStart(total);
        drawImage(ui.preview, img);
      },
      onRecord,
      onPreview: (_steps, img) => drawImage(ui.preview, img),
    });
    drawImage(ui.preview, result.image);
    drawPlot(ui.plot, records, result.total);
    await offerDownload(result.image);
    const secs = ((performance.now() - t0) / 1000).toFixed(1);
    const what = result.steps < result.total
      ? `stopped after ${result.steps} of ${result.total} iterations`
      : `done: ${result.steps} iterations`;
    const last = records.at(-1);
    status(
      "done",
      `${what} in ${secs} s, final loss ${last?.loss.toExponential(4)}; ` +
        `${result.image.width}×${result.image.height}`,
      last?.loss,
    );
  } catch (e) {
    if (!(e instanceof UserError)) console.error(e);
    const msg = e instanceof UserError ? pageMessage(e) : `internal error: ${e}`;
    status("error", msg);
  } finally {
    abort = null;
    ui.start.disabled = false;
    ui.stop.disabled = true;
  }
}

/** Lets files dropped on `zone` fill `input`. */
function dropZone(zone: HTMLElement, input: HTMLInputElement): void {
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const files = e.dataTransfer?.files;
    if (!files?.length) return;
    const dt = new DataTransfer();
    for (const f of input.multiple ? [...files] : [files[0]]) dt.items.add(f);
    input.files = dt.files;
  });
}

function init(): void {
  for (const [k, el] of Object.entries(FIELDS)) {
    el.value = DEFAULT_FORM[k as keyof SettingsForm];
  }
  FIELDS.styleSize.placeholder = "same as output";
  for (const input of [ui.content, ui.style]) dropZone(input.closest("label")!, input);
  ui.form.addEventListener("submit", (e) => {
    e.preventDefault();
    start();
  });
  ui.stop.addEventListener("click", () => abort?.abort());
  clearDownload();
  status("idle", "loading the weights and the GPU");
  // A run started meanwhile reports for itself.
  const idle = () => ui.status.dataset.state !== "running";
  engine().then(
    () =>
      idle() &&
      status(
        "idle",
        "ready: choose a content image and style images, then Start",
      ),
    (e) => {
      if (!(e instanceof UserError)) console.error(e);
      if (idle()) {
        status(
          "error",
          e instanceof UserError ? e.message : `internal error: ${e}`,
        );
      }
    },
  );
}

init();
