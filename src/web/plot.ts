/**
 * The loss plot: the content, style and total-variation terms over the
 * iterations, on a log scale, drawn on a canvas.
 * @module
 */
import type { IterationRecord } from "../engine/model/optimize.ts";

/** The plotted terms with their colours. */
const SERIES = [
  { key: "content", label: "content", color: "#1f77b4" },
  { key: "style", label: "style", color: "#d62728" },
  { key: "tv", label: "TV", color: "#2ca02c" },
] as const;

const PAD = { left: 52, right: 10, top: 22, bottom: 22 };

/** log10 range of the positive values of `records`' terms, widened when flat. */
function logRange(records: IterationRecord[]): [number, number] {
  let lo = Infinity, hi = -Infinity;
  for (const r of records) {
    for (const { key } of SERIES) {
      if (r[key] > 0) [lo, hi] = [Math.min(lo, r[key]), Math.max(hi, r[key])];
    }
  }
  if (!(hi >= lo)) return [0, 1];
  const [a, b] = [Math.floor(Math.log10(lo)), Math.ceil(Math.log10(hi))];
  return b > a ? [a, b] : [a, a + 1];
}

/** Axes, decade lines and labels. */
function drawAxes(
  ctx: CanvasRenderingContext2D,
  w: number,
  h: number,
  lo: number,
  hi: number,
) {
  ctx.strokeStyle = "#ccc";
  ctx.fillStyle = "#555";
  ctx.font = "11px sans-serif";
  ctx.textBaseline = "middle";
  for (let e = lo; e <= hi; e++) {
    const y = PAD.top + (h - PAD.top - PAD.bottom) * (hi - e) / (hi - lo);
    ctx.beginPath();
    ctx.moveTo(PAD.left, y);
    ctx.lineTo(w - PAD.right, y);
    ctx.stroke();
    ctx.fillText(`1e${e}`, 6, y);
  }
}

/** The legend along the top. */
function drawLegend(ctx: CanvasRenderingContext2D) {
  let x = PAD.left;
  for (const s of SERIES) {
    ctx.fillStyle = s.color;
    ctx.fillRect(x, 6, 10, 10);
    ctx.fillStyle = "#333";
    ctx.fillText(s.label, x + 14, 11);
    x += 20 + ctx.measureText(s.label).width + 12;
  }
}

/**
 * Redraws the plot of `records` (iteration 1 … `total` along x).
 * @param canvas the plot's canvas
 * @param records the records so far
 * @param total iterations of the run
 */
export function drawPlot(
  canvas: HTMLCanvasElement,
  records: IterationRecord[],
  total: number,
) {
  const ctx = canvas.getContext("2d")!;
  const { width: w, height: h } = canvas;
  ctx.clearRect(0, 0, w, h);
  const [lo, hi] = logRange(records);
  drawAxes(ctx, w, h, lo, hi);
  drawLegend(ctx);
  const x = (i: number) => PAD.left + (w - PAD.left - PAD.right) * i / Math.max(1, total - 1);
  const y = (v: number) => PAD.top + (h - PAD.top - PAD.bottom) * (hi - Math.log10(v)) / (hi - lo);
  for (const s of SERIES) {
    ctx.strokeStyle = s.color;
    ctx.beginPath();
    let pen = false;
    for (const r of records) {
      if (!(r[s.key] > 0)) continue;
      pen ? ctx.lineTo(x(r.i), y(r[s.key])) : ctx.moveTo(x(r.i), y(r[s.key]));
      pen = true;
    }
    ctx.stroke();
  }
}
