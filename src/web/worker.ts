/**
 * The page's module worker: the engine (WebGPU in the worker), the images'
 * decoding and preparation, each preview's conversion to an ImageBitmap
 * (transferred to the page, which only draws it), the PNG with its settings
 * and the stages strip, mask files' luminance for the regions; a lost device
 * is replaced by a new one (the run resumes on it). Messages: ./protocol.ts.
 * @module
 */
import { type Setting, UserError } from "../engine/errors.ts";
import { adapterLabel } from "../engine/gpu/device.ts";
import { luminance } from "../engine/image/mask.ts";
import { insertPngText } from "../engine/image/png_text.ts";
import { fitLongerSide, resize } from "../engine/image/resize.ts";
import type { RgbImage } from "../engine/image/types.ts";
import { type IterationRecord, loopRate } from "../engine/model/optimize.ts";
import { asciiJson, RECORD_KEYWORD, type RunRecord } from "../engine/model/run_record.ts";
import type { Engine } from "../engine/model/stylizer.ts";
import type { Mask } from "./brush.ts";
import { pngBytes, toBitmap } from "./canvas.ts";
import { decodeImageFile } from "./decode.ts";
import { createPageEngine } from "./engine.ts";
import type { FromWorker, ToWorker } from "./protocol.ts";
import { runInPage, sizeLimits, stagesSheet } from "./run.ts";
import { DEFAULT_FORM, pageRecord, parseSettings, type RunSettings } from "./settings.ts";

/** The worker's global scope, as far as it is used here. */
const scope = globalThis as unknown as {
  postMessage(m: FromWorker, transfer?: Transferable[]): void;
  addEventListener(type: "message", f: (e: MessageEvent<ToWorker>) => void): void;
};

/** Messages go out in the order they are queued, each once its bitmaps are made. */
let outbox: Promise<void> = Promise.resolve();

/** Queues a message (made by `make`, possibly after converting images). */
function send(make: () => Promise<FromWorker> | FromWorker): Promise<void> {
  outbox = outbox.then(async () => {
    let m: FromWorker;
    try {
      m = await make();
    } catch (e) {
      m = { type: "error", ...failure(e) };
    }
    const transfer: Transferable[] = [];
    for (const v of Object.values(m)) if (v instanceof ImageBitmap) transfer.push(v);
    scope.postMessage(m, transfer);
  });
  return outbox;
}

let base = "";
let enginePromise: Promise<Engine> | null = null;
let abort: AbortController | null = null;
/** The last content's shape (for the size limits). */
let shape = { width: 4, height: 3 };
/** The GPU memory cap of the last settings seen (the engine is given it before use). */
let maxGpuMemory: number | undefined;

const notice = (message: string) => send(() => ({ type: "notice", message }));

/**
 * The engine, acquired on first use; a failure makes the next call try
 * again. A lost device: during a run, the run's recovery asks for a new one;
 * otherwise a new one is asked for at once.
 */
function engine(): Promise<Engine> {
  const p = enginePromise ??= createPageEngine(base, {
    onProgress: (message) => send(() => ({ type: "progress", message })),
    onNotice: notice,
    maxGpuMemory,
  }).then((e) => {
    send(() => ({ type: "ready", adapter: adapterLabel(e.gpu) }));
    e.gpu.lost.then((m) => {
      if (enginePromise === p) enginePromise = null;
      if (abort) return;
      notice(`${m}; asking for a new GPU device`);
      engine().then(
        () => limits(null),
        (err) => send(() => ({ type: "failed", ...failure(err) })),
      );
    });
    return e;
  });
  p.catch(() => {
    if (enginePromise === p) enginePromise = null;
  });
  return p.then((e) => {
    e.setMaxGpuMemory(maxGpuMemory);
    return e;
  });
}

/** A new engine for a run whose device was lost (the old one's resources are let go). */
async function recover(old: Engine): Promise<Engine> {
  try {
    old.dispose();
  } catch { /* its device is gone */ }
  enginePromise = null;
  return await engine();
}

/** An error as the page shows it. */
function failure(e: unknown): { message: string; user: boolean; settings?: Setting[] } {
  if (e instanceof UserError) return { message: e.message, user: true, settings: [...e.settings] };
  console.error(e);
  return { message: String(e), user: false };
}

/** Sends the output sizes the GPU holds for the last content's shape (once the engine is ready). */
async function limits(settings: RunSettings | null): Promise<void> {
  let eng: Engine;
  try {
    eng = await engine();
  } catch {
    return;
  }
  const s = settings ?? parseSettings(DEFAULT_FORM);
  if (settings) maxGpuMemory = settings.maxGpuMemory;
  eng.setMaxGpuMemory(maxGpuMemory);
  const { width, height } = shape;
  send(() => ({ type: "limits", width, height, limits: sizeLimits(eng, width, height, s) }));
}

/** Decodes a chosen content image and sends it, at the output size, to be shown. */
async function showContent(file: File | null, settings: RunSettings | null): Promise<void> {
  let img: RgbImage | null = null;
  if (file) {
    try {
      img = await decodeImageFile(file, file.name);
    } catch {
      img = null;
    }
  }
  if (img) shape = { width: img.width, height: img.height };
  const size = settings?.size ?? 512;
  const shown = img && (() => {
    const [w, h] = fitLongerSide(img.width, img.height, Math.min(size, 1024));
    return resize(img, w, h);
  })();
  await send(async () => ({
    type: "content",
    bitmap: shown ? await toBitmap(shown) : null,
    width: img?.width ?? 0,
    height: img?.height ?? 0,
  }));
  await limits(settings);
}

/** The PNG of `img` with the run's settings in its `stylize` tEXt chunk. */
async function pngWithRecord(img: RgbImage, record: RunRecord | null): Promise<Blob> {
  let bytes = await pngBytes(img);
  if (record) bytes = insertPngText(bytes, RECORD_KEYWORD, asciiJson(record));
  return new Blob([bytes as Uint8Array<ArrayBuffer>], { type: "image/png" });
}

/** The rate after the first iteration (which compiles the kernels), as the page shows it. */
function rateText(first: IterationRecord, last: IterationRecord): string {
  const speed = loopRate(last.i + 1, last.i + 1, last.ms, first.ms);
  return speed ? `${speed.rate.toFixed(2)} it/s` : "";
}

/** A mask as an RGB image (gray: its luminance is itself). */
function maskImage(m: Mask): RgbImage {
  const data = new Uint8Array(3 * m.data.length);
  for (let i = 0; i < m.data.length; i++) {
    data[3 * i] = data[3 * i + 1] = data[3 * i + 2] = m.data[i];
  }
  return { width: m.width, height: m.height, data };
}

/** Decodes a mask file for style `index`: its luminance (what the CLI's --style-masks takes). */
async function decodeMask(file: File, index: number): Promise<void> {
  try {
    const gray = luminance(await decodeImageFile(file, file.name));
    const data = new Uint8Array(gray.width * gray.height);
    for (let i = 0; i < data.length; i++) data[i] = gray.data[3 * i];
    send(() => ({ type: "mask", index, mask: { width: gray.width, height: gray.height, data } }));
  } catch (e) {
    send(() => ({ type: "mask", index, mask: null, message: failure(e).message }));
  }
}

/** One run, from the files to the result's PNG. */
async function run(m: Extract<ToWorker, { type: "run" }>): Promise<void> {
  if (abort) return;
  abort = new AbortController();
  try {
    const content = await decodeImageFile(m.content, m.content.name);
    shape = { width: content.width, height: content.height };
    const styles = await Promise.all(m.styles.map((f) => decodeImageFile(f, f.name)));
    const masks = m.masks?.map(maskImage);
    maxGpuMemory = m.settings.maxGpuMemory;
    let eng = await engine();
    send(() => ({
      type: "progress",
      message: "computing the style targets (a first run also compiles the kernels)",
    }));
    let first: IterationRecord | null = null;
    const result = await runInPage(eng, content, styles, m.settings, {
      masks,
      signal: abort.signal,
      recover: async () => eng = await recover(eng),
      onNotice: notice,
      onStart: (img, total) =>
        send(async () => ({ type: "started", bitmap: await toBitmap(img), total })),
      onScale: (scale) => send(() => ({ type: "scale", scale })),
      onRecord: (record, scale) => {
        first ??= record;
        const rate = rateText(first, record);
        send(() => ({ type: "record", record, scale, rate }));
      },
      onPreview: (steps, img) =>
        send(async () => ({ type: "preview", bitmap: await toBitmap(img), steps })),
    });
    const record = pageRecord(m.settings, {
      content: m.content.name,
      styles: m.styles.map((f) => f.name),
      scales: result.scales,
      steps: result.steps,
      masks: masks !== undefined,
    });
    const sheet = stagesSheet(content, styles, result.stages, result.image, masks);
    await send(async () => ({
      type: "done",
      failed: result.failed,
      longestSubmitMs: result.longestSubmitMs,
      bitmap: await toBitmap(result.image),
      png: await pngWithRecord(result.image, record),
      stages: await toBitmap(sheet),
      stagesPng: await pngWithRecord(sheet, null),
      steps: result.steps,
      total: result.total,
      tiles: result.tiles,
      record,
    }));
  } catch (e) {
    const f = failure(e);
    await send(() => ({ type: "error", ...f }));
  } finally {
    abort = null;
  }
}

scope.addEventListener("message", (e) => {
  const m = e.data;
  if (m.type === "init") {
    base = m.base;
    engine().then(
      () => limits(null),
      (err) => send(() => ({ type: "failed", ...failure(err) })),
    );
  } else if (m.type === "content") showContent(m.file, m.settings);
  else if (m.type === "limits") limits(m.settings);
  else if (m.type === "run") run(m);
  else if (m.type === "mask") decodeMask(m.file, m.index);
  else if (m.type === "stop") abort?.abort();
});
