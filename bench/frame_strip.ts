/**
 * A frame strip for the README (docs/video-strip.jpg): one row per folder of
 * frames (e.g. the input clip, its frames stylised one by one, the same
 * through --video, their error maps from bench/video_eval.py --maps), the
 * frames picked by their 1-based index, each row a contact sheet
 * (src/engine/image/sheet.ts) stacked under the last; JPEG at --quality.
 *
 *   deno run -A bench/frame_strip.ts [--frames 1,4,8,12] [--height 132] [--quality 85] \
 *     -o docs/video-strip.jpg /tmp/stylize-clip /tmp/independent /tmp/maps/independent \
 *     /tmp/video /tmp/maps/video
 *
 * (the commands that make those folders: README, "What video mode buys").
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { encodeImage, readImage } from "../src/deno/image/mod.ts";
import { contactSheet } from "../src/engine/image/sheet.ts";
import { newImage, type RgbImage } from "../src/engine/image/types.ts";
import { listImages, stem } from "../src/deno/batch.ts";

/** A white w×h image (a missing frame). */
function blank(w: number, h: number): RgbImage {
  const out = newImage(w, h);
  out.data.fill(255);
  return out;
}

/** Rows stacked top to bottom (all of one width), without gaps of their own between them. */
function stack(rows: RgbImage[]): RgbImage {
  const width = rows[0].width;
  const out = newImage(width, rows.reduce((a, r) => a + r.height, 0));
  let y = 0;
  for (const r of rows) {
    if (r.width !== width) throw new Error(`rows of ${r.width} and ${width} px`);
    out.data.set(r.data, y * width * 3);
    y += r.height;
  }
  return out;
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: {
      frames: { type: "string", default: "1,4,8,12" },
      height: { type: "string", default: "176" },
      output: { type: "string", short: "o", default: "docs/video-strip.jpg" },
      quality: { type: "string", default: "85" },
    },
    allowPositionals: true,
  });
  const picks = values.frames.split(",").map(Number);
  // The frames are picked in the first folder; every other row shows the files of the same
  // names (a blank where there is none: an error map has no frame 1).
  const names = listImages(positionals[0], "frames").filter((_, i) => picks.includes(i + 1));
  const { width, height } = await readImage(join(positionals[0], names[0]));
  const rows: RgbImage[] = [];
  for (const [k, dir] of positionals.entries()) {
    const have = new Set(listImages(dir, "frames"));
    const images: RgbImage[] = [];
    for (const n of names) {
      const file = have.has(n) ? n : `${stem(n)}.png`;
      images.push(have.has(file) ? await readImage(join(dir, file)) : blank(width, height));
    }
    const sheet = contactSheet(images, Number(values.height));
    // Each sheet has a white frame of 8 px; the rows share the one between them.
    rows.push(
      k === 0
        ? sheet
        : { ...sheet, height: sheet.height - 8, data: sheet.data.subarray(8 * sheet.width * 3) },
    );
  }
  const jpeg = await encodeImage(stack(rows), "jpeg", Number(values.quality));
  await Deno.writeFile(values.output, jpeg);
  console.log(`wrote ${values.output}`);
}
