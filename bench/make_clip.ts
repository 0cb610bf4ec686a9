/**
 * A synthetic clip for measuring video (issue #32, bench/VIDEO.md): a camera
 * panning over examples/chelsea.png (CC0) with a textured disc moving
 * across it on a path of its own. Frame t shows the photo (blurred by
 * σ = 0.6 px so that sub-pixel steps do not alias) from the window whose
 * top-left corner is (x0 + t·vx, y0 + t·vy), sampled bicubically; the disc
 * (radius 0.12·w, its texture a patch of the photo with its channels
 * rotated so it stands out, its edge antialiased by 4×4 supersampling)
 * moves by (dx, dy) frame pixels a frame against the pan. Written as
 * 8-bit PNG frames `OUT/frame_0001.png` … (generated, not committed).
 *
 *   deno run -A bench/make_clip.ts [--out /tmp/stylize-clip] [--frames 12] [--size 256x176]
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { readImage, writeImage } from "../src/deno/image/mod.ts";
import type { RgbImage } from "../src/engine/image/types.ts";
import { blurSource, sample, type Source } from "./flow_epe.ts";

/** The clip's motion, in frame pixels per frame. */
export interface ClipMotion {
  /** The camera's pan (the scene moves by minus this). */
  pan: [number, number];
  /** The disc's own motion in the frame. */
  disc: [number, number];
}

/** The default motion: a pan right and down, the disc moving left and down. */
export const DEFAULT_MOTION: ClipMotion = { pan: [2.5, 0.75], disc: [-6, 1.5] };

/** Frame t (0-based) of a w×h clip over `src`. */
export function clipFrame(src: Source, w: number, h: number, t: number, m: ClipMotion): RgbImage {
  const [x0, y0] = [4, 4];
  const [cx0, cy0] = [0.78 * w, 0.3 * h];
  const r = 0.12 * w;
  const [cx, cy] = [cx0 + t * m.disc[0], cy0 + t * m.disc[1]];
  // The disc's texture: a patch of the photo (its top-left corner), fixed to the disc.
  const tex = (x: number, y: number) => {
    const [r0, g0, b0] = sample(src, 0.15 * src.w + (x - cx), 0.25 * src.h + (y - cy));
    return [b0, r0, g0];
  };
  const data = new Uint8Array(3 * w * h);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const bg = sample(src, x0 + t * m.pan[0] + x, y0 + t * m.pan[1] + y);
      let cover = 0;
      for (let j = 0; j < 4; j++) {
        for (let i = 0; i < 4; i++) {
          const [sx, sy] = [x - 0.375 + 0.25 * i, y - 0.375 + 0.25 * j];
          if ((sx - cx) ** 2 + (sy - cy) ** 2 <= r * r) cover++;
        }
      }
      const a = cover / 16;
      const fg = a > 0 ? tex(x, y) : bg;
      for (let c = 0; c < 3; c++) {
        const v = a * fg[c] + (1 - a) * bg[c];
        data[3 * (y * w + x) + c] = Math.min(255, Math.max(0, Math.round(v)));
      }
    }
  }
  return { width: w, height: h, data };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      out: { type: "string", default: "/tmp/stylize-clip" },
      frames: { type: "string", default: "12" },
      size: { type: "string", default: "256x176" },
    },
  });
  const [w, h] = values.size.split("x").map(Number);
  const n = Number(values.frames);
  const photo = await readImage(new URL("../examples/chelsea.png", import.meta.url).pathname);
  const src = blurSource(photo, 0.6);
  const m = DEFAULT_MOTION;
  if (4 + (n - 1) * m.pan[0] + w + 2 > src.w || 4 + (n - 1) * m.pan[1] + h + 2 > src.h) {
    throw new Error(`${n} frames of ${w}×${h} pan out of the ${src.w}×${src.h} photo`);
  }
  await Deno.mkdir(values.out, { recursive: true });
  for (let t = 0; t < n; t++) {
    const path = join(values.out, `frame_${String(t + 1).padStart(4, "0")}.png`);
    await writeImage(path, clipFrame(src, w, h, t, m));
  }
  console.log(`wrote ${n} frames of ${w}×${h} to ${values.out}`);
}
