/**
 * The regions' brush (spatial control in the page): a mask is an 8-bit
 * grayscale image (0: not this style's region, 255: fully in it) that the
 * engine reads as the CLI reads a mask file (src/engine/image/mask.ts); a
 * round brush paints it (each pixel keeps the most any dab gave it) or
 * erases it (the least), with a hard core and a soft rim. Pure: no DOM, so
 * it is tested in Deno.
 * @module
 */

/** A mask: 8-bit gray, row-major, `width`×`height`. */
export interface Mask {
  width: number;
  height: number;
  data: Uint8Array;
}

/** The brush. */
export interface Brush {
  /** Radius in mask pixels (> 0). */
  radius: number;
  /** The soft rim's share of the radius, 0 (hard) to 1 (soft to the centre). */
  softness: number;
  /** Erase instead of paint. */
  erase: boolean;
}

/** A rectangle of pixels [x0, x1) × [y0, y1) (empty when x0 >= x1 or y0 >= y1). */
export interface Rect {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** An empty rectangle. */
export const NO_RECT: Rect = { x0: 0, y0: 0, x1: 0, y1: 0 };

/** A mask of zeros (no region). */
export function emptyMask(width: number, height: number): Mask {
  return { width, height, data: new Uint8Array(width * height) };
}

/** Whether no pixel of `mask` is in its region. */
export function isEmpty(mask: Mask): boolean {
  return mask.data.every((v) => v === 0);
}

/** The smallest rectangle holding `a` and `b`. */
export function union(a: Rect, b: Rect): Rect {
  if (a.x0 >= a.x1 || a.y0 >= a.y1) return b;
  if (b.x0 >= b.x1 || b.y0 >= b.y1) return a;
  return {
    x0: Math.min(a.x0, b.x0),
    y0: Math.min(a.y0, b.y0),
    x1: Math.max(a.x1, b.x1),
    y1: Math.max(a.y1, b.y1),
  };
}

/**
 * The brush's coverage at distance `d` from its centre, 0..255: 255 within
 * the hard core (radius × (1 − softness)), 0 from the radius on, a
 * smoothstep between.
 */
export function coverage(d: number, brush: Brush): number {
  const r = brush.radius;
  const core = r * (1 - Math.min(1, Math.max(0, brush.softness)));
  if (d <= core) return 255;
  if (d >= r) return 0;
  const t = (r - d) / (r - core);
  return Math.round(255 * t * t * (3 - 2 * t));
}

/** The distance from (px, py) to the segment from (ax, ay) to (bx, by). */
function segmentDistance(
  px: number,
  py: number,
  ax: number,
  ay: number,
  bx: number,
  by: number,
): number {
  const [dx, dy] = [bx - ax, by - ay];
  const len2 = dx * dx + dy * dy;
  const t = len2 === 0 ? 0 : Math.min(1, Math.max(0, ((px - ax) * dx + (py - ay) * dy) / len2));
  return Math.hypot(px - ax - t * dx, py - ay - t * dy);
}

/**
 * The brush dragged from `from` to `to` (mask pixels; pixel i's centre is at
 * i + 0.5): each pixel gets the coverage of its distance to the segment;
 * paint keeps each pixel's most, erase its least of 255 − the coverage. So
 * a stroke of several segments gives the coverage of each pixel's distance
 * to the whole path, however the pointer's events cut it. Returns the
 * rectangle it touched.
 */
export function stroke(
  mask: Mask,
  from: [number, number],
  to: [number, number],
  brush: Brush,
): Rect {
  const r = brush.radius;
  const [ax, ay] = from;
  const [bx, by] = to;
  const rect = {
    x0: Math.max(0, Math.floor(Math.min(ax, bx) - r)),
    y0: Math.max(0, Math.floor(Math.min(ay, by) - r)),
    x1: Math.min(mask.width, Math.ceil(Math.max(ax, bx) + r)),
    y1: Math.min(mask.height, Math.ceil(Math.max(ay, by) + r)),
  };
  for (let py = rect.y0; py < rect.y1; py++) {
    for (let px = rect.x0; px < rect.x1; px++) {
      const c = coverage(segmentDistance(px + 0.5, py + 0.5, ax, ay, bx, by), brush);
      if (c === 0) continue;
      const i = py * mask.width + px;
      mask.data[i] = brush.erase ? Math.min(mask.data[i], 255 - c) : Math.max(mask.data[i], c);
    }
  }
  return rect;
}

/** One dab of the brush centred at (x, y): a stroke of no length. */
export function dab(mask: Mask, x: number, y: number, brush: Brush): Rect {
  return stroke(mask, [x, y], [x, y], brush);
}

/** The brush's radius in mask pixels for a diameter of `percent` % of the mask's longer side. */
export function brushRadius(mask: Pick<Mask, "width" | "height">, percent: number): number {
  return Math.max(0.5, Math.max(mask.width, mask.height) * percent / 200);
}
