/**
 * Painting the regions (spatial control) on the page's main thread: one mask
 * per style image, at the content image's own resolution, painted with a
 * round brush over the preview (size, softness, eraser, clear) or taken from
 * a mask file (decoded by the worker), shown as coloured overlays (a canvas
 * per style over the preview), and offered as an 8-bit grayscale PNG — the
 * file the CLI's `--style-masks` reads to the same values. The run gets the
 * masks as they are (./brush.ts, ./mask_png.ts).
 * @module
 */
import {
  type Brush,
  brushRadius,
  emptyMask,
  isEmpty,
  type Mask,
  NO_RECT,
  type Rect,
  stroke,
  union,
} from "./brush.ts";
import { maskPng } from "./mask_png.ts";

/** The elements of the regions' controls. */
export interface RegionsUi {
  /** The "Regions" box: open, the pointer paints and the overlays show. */
  box: HTMLDetailsElement;
  /** The preview's stack (the overlays go in it), and the preview. */
  stack: HTMLElement;
  preview: HTMLCanvasElement;
  /** Which style's region is painted. */
  style: HTMLSelectElement;
  /** Brush diameter (% of the image's longer side), softness (%), eraser, clear. */
  size: HTMLInputElement;
  softness: HTMLInputElement;
  eraser: HTMLInputElement;
  clear: HTMLButtonElement;
  /** A mask file for the selected style. */
  file: HTMLInputElement;
  /** The selected style's mask as a PNG. */
  download: HTMLAnchorElement;
  /** What is painted, in words. */
  hint: HTMLElement;
}

/** The overlay colour of each style (then again from the first). */
const COLOURS: { name: string; rgb: [number, number, number] }[] = [
  { name: "red", rgb: [230, 25, 75] },
  { name: "blue", rgb: [0, 110, 220] },
  { name: "green", rgb: [40, 170, 60] },
  { name: "orange", rgb: [245, 130, 48] },
  { name: "purple", rgb: [145, 30, 180] },
  { name: "cyan", rgb: [0, 190, 200] },
];

/** A style's overlay colour. */
export function regionColour(k: number): { name: string; rgb: [number, number, number] } {
  return COLOURS[k % COLOURS.length];
}

/** A file name's stem ("starry_night" of "starry_night.jpg"). */
function stem(name: string): string {
  return name.replace(/\.[^.]*$/, "") || name;
}

/** The regions: masks, overlays, brush and export. */
export class Regions {
  readonly #ui: RegionsUi;
  /** Asks the worker to decode a mask file for style `index` (the answer: {@link setMask}). */
  readonly #decode: (file: File, index: number) => void;
  /** The content's own size (null: no content yet). */
  #content: { width: number; height: number } | null = null;
  #names: string[] = [];
  /** Each style's mask (null: nothing painted or given). */
  #masks: (Mask | null)[] = [];
  #overlays: HTMLCanvasElement[] = [];
  /** The stroke being painted: its last point, in mask pixels. */
  #last: [number, number] | null = null;
  #dirty: Rect = NO_RECT;
  #frame = false;
  /** The export link's object URL, and a counter that drops stale encodings. */
  #url: string | null = null;
  #version = 0;

  /** @param decode asks the worker for a mask file's luminance (see {@link setMask}) */
  constructor(ui: RegionsUi, decode: (file: File, index: number) => void) {
    this.#ui = ui;
    this.#decode = decode;
    ui.box.addEventListener("toggle", () => this.#showOverlays());
    ui.style.addEventListener("change", () => this.#refresh());
    ui.clear.addEventListener("click", () => this.#clear());
    ui.file.addEventListener("change", () => {
      const f = ui.file.files?.[0];
      if (f) this.#decode(f, this.selected);
      ui.file.value = "";
    });
    this.#pointer();
    this.#drop();
    this.#showOverlays();
    this.#refresh();
  }

  /** Whether the pointer paints (the box is open). */
  get painting(): boolean {
    return this.#ui.box.open;
  }

  /** The style whose region is painted. */
  get selected(): number {
    return Math.max(0, this.#ui.style.selectedIndex);
  }

  /** A new content image (its own size; 0×0: none): the masks start again. */
  setContent(width: number, height: number): void {
    this.#content = width > 0 && height > 0 ? { width, height } : null;
    this.#reset();
  }

  /** New style images (their names): one region each, empty. */
  setStyles(names: string[]): void {
    this.#names = names;
    const select = this.#ui.style;
    select.replaceChildren(
      ...names.map((n, k) => new Option(`${k + 1}: ${n} (${regionColour(k).name})`, String(k))),
    );
    select.disabled = names.length === 0;
    this.#reset();
  }

  /** Style `index`'s mask, from a file (its luminance, at its own size). */
  setMask(index: number, mask: Mask): void {
    if (index >= this.#names.length) return;
    this.#masks[index] = mask;
    this.#drawAll(index);
    this.#refresh();
  }

  /**
   * The masks for a run: one per style (a style with none painted gets an
   * empty one: it goes nowhere), or null when none is painted (every style
   * everywhere).
   */
  forRun(): Mask[] | null {
    const c = this.#content;
    if (!c || this.#masks.every((m) => !m || isEmpty(m))) return null;
    return this.#names.map((_, k) => this.#masks[k] ?? emptyMask(c.width, c.height));
  }

  /** Masks and overlays for the current content and styles, all empty. */
  #reset(): void {
    this.#masks = this.#names.map(() => null);
    for (const c of this.#overlays) c.remove();
    this.#overlays = this.#names.map((_, k) => {
      const c = document.createElement("canvas");
      c.className = "region";
      c.setAttribute("aria-hidden", "true");
      c.width = this.#content?.width ?? 1;
      c.height = this.#content?.height ?? 1;
      c.addEventListener("contextrestored", () => this.#drawAll(k));
      this.#ui.stack.append(c);
      return c;
    });
    this.#refresh();
  }

  /** Style `k`'s mask, made empty at the content's size when there is none. */
  #mask(k: number): Mask | null {
    if (!this.#masks[k] && this.#content) {
      this.#masks[k] = emptyMask(this.#content.width, this.#content.height);
    }
    return this.#masks[k];
  }

  #clear(): void {
    const k = this.selected;
    if (!this.#masks[k]) return;
    this.#masks[k] = null;
    this.#drawAll(k);
    this.#refresh();
  }

  /** The brush of the controls for `mask`. */
  #brush(mask: Mask): Brush {
    return {
      radius: brushRadius(mask, Number(this.#ui.size.value)),
      softness: Number(this.#ui.softness.value) / 100,
      erase: this.#ui.eraser.checked,
    };
  }

  /** The pointer's position in `mask`'s pixels (the preview's content box is the mask). */
  #at(e: PointerEvent, mask: Mask): [number, number] {
    const p = this.#ui.preview;
    const r = p.getBoundingClientRect();
    const x = (e.clientX - r.left - p.clientLeft) / p.clientWidth;
    const y = (e.clientY - r.top - p.clientTop) / p.clientHeight;
    return [x * mask.width, y * mask.height];
  }

  /** The pointer paints the selected style's region while the box is open. */
  #pointer(): void {
    const stack = this.#ui.stack;
    stack.addEventListener("pointerdown", (e) => {
      if (!this.painting || e.button !== 0) return;
      const mask = this.#mask(this.selected);
      if (!mask) return;
      e.preventDefault();
      stack.setPointerCapture(e.pointerId);
      this.#last = this.#at(e, mask);
      this.#paint(mask, this.#last);
    });
    stack.addEventListener("pointermove", (e) => {
      const mask = this.#last && this.#masks[this.selected];
      if (!mask) return;
      for (const ev of e.getCoalescedEvents?.() ?? [e]) this.#paint(mask, this.#at(ev, mask));
    });
    const end = () => {
      if (!this.#last) return;
      this.#last = null;
      this.#refresh();
    };
    stack.addEventListener("pointerup", end);
    stack.addEventListener("pointercancel", end);
  }

  /** The brush from the last point to `p`; the overlay is redrawn on the next frame. */
  #paint(mask: Mask, p: [number, number]): void {
    const rect = stroke(mask, this.#last!, p, this.#brush(mask));
    this.#last = p;
    this.#dirty = union(this.#dirty, rect);
    this.#markStale();
    if (this.#frame) return;
    this.#frame = true;
    const k = this.selected;
    requestAnimationFrame(() => {
      this.#frame = false;
      this.#draw(k, this.#dirty);
      this.#dirty = NO_RECT;
    });
  }

  /** A mask file dropped on the image while painting is the selected style's. */
  #drop(): void {
    const stack = this.#ui.stack;
    stack.addEventListener("dragover", (e) => {
      if (!this.painting) return;
      e.preventDefault();
      e.stopPropagation();
    });
    stack.addEventListener("drop", (e) => {
      if (!this.painting) return;
      e.preventDefault();
      e.stopPropagation();
      const f = e.dataTransfer?.files?.[0];
      if (f) this.#decode(f, this.selected);
    });
  }

  #showOverlays(): void {
    this.#ui.stack.classList.toggle("painting", this.painting);
  }

  /** Redraws style `k`'s whole overlay (at its mask's size). */
  #drawAll(k: number): void {
    const c = this.#overlays[k];
    const m = this.#masks[k];
    if (!c) return;
    const [w, h] = m ? [m.width, m.height] : [c.width, c.height];
    if (c.width !== w) c.width = w;
    if (c.height !== h) c.height = h;
    if (!m) c.getContext("2d")!.clearRect(0, 0, w, h);
    else this.#draw(k, { x0: 0, y0: 0, x1: w, y1: h });
  }

  /** Redraws a rectangle of style `k`'s overlay: its colour, more opaque where the mask is. */
  #draw(k: number, r: Rect): void {
    const m = this.#masks[k];
    const c = this.#overlays[k];
    if (!m || !c || r.x0 >= r.x1 || r.y0 >= r.y1) return;
    const [w, h] = [r.x1 - r.x0, r.y1 - r.y0];
    const img = new ImageData(w, h);
    const [cr, cg, cb] = regionColour(k).rgb;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const v = m.data[(r.y0 + y) * m.width + r.x0 + x];
        const o = 4 * (y * w + x);
        img.data[o] = cr;
        img.data[o + 1] = cg;
        img.data[o + 2] = cb;
        img.data[o + 3] = v === 0 ? 0 : Math.round(24 + 0.4 * v);
      }
    }
    c.getContext("2d")!.putImageData(img, r.x0, r.y0);
  }

  /** The export link no longer shows the selected mask (until {@link refresh} makes it). */
  #markStale(): void {
    this.#version++;
    const a = this.#ui.download;
    a.removeAttribute("href");
    a.setAttribute("aria-disabled", "true");
  }

  /** The hint and the selected style's PNG, after a change. */
  #refresh(): void {
    this.#markStale();
    this.#ui.hint.textContent = this.#hint();
    const k = this.selected;
    const c = this.#content;
    if (!c || k >= this.#names.length) return;
    const mask = this.#masks[k] ?? emptyMask(c.width, c.height);
    const version = this.#version;
    maskPng(mask).then((png) => {
      if (version !== this.#version) return;
      if (this.#url) URL.revokeObjectURL(this.#url);
      this.#url = URL.createObjectURL(
        new Blob([png as Uint8Array<ArrayBuffer>], { type: "image/png" }),
      );
      const a = this.#ui.download;
      a.href = this.#url;
      a.download = `mask-${k + 1}-${stem(this.#names[k])}.png`;
      a.setAttribute("aria-disabled", "false");
    });
  }

  /** What is painted, in words. */
  #hint(): string {
    if (!this.#content || this.#names.length === 0) {
      return "Choose the content and style images, then paint where each style goes.";
    }
    const share = (m: Mask | null) =>
      m ? m.data.reduce((a, v) => a + v, 0) / (255 * m.data.length) : 0;
    if (this.#masks.every((m) => share(m) === 0)) {
      return "Nothing painted: every style everywhere. Paint over the image where the " +
        "selected style goes.";
    }
    const parts = this.#names.map((_, k) => {
      const s = share(this.#masks[k]);
      const where = s === 0
        ? "nowhere yet"
        : `${(100 * s).toFixed(s < 0.01 ? 1 : 0)}% of the image`;
      return `style ${k + 1} (${regionColour(k).name}): ${where}`;
    });
    return `${parts.join("; ")}. Unpainted pixels get the content and smoothness terms only.`;
  }
}
