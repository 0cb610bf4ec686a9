/**
 * `deno task bench:style RESULT STYLE [--size 256]`: the style loss of an
 * image against a style image, both resized to `--size` on their longer
 * side (Pillow-exact bicubic), with the default style layers and weights —
 * reference.py's style_loss of the two at that size: how much of a style a
 * result carries at a common scale, whatever size it was made at.
 * @module
 */
import { parseArgs } from "node:util";
import { fitLongerSide, resize, toTensor } from "../src/engine/image/mod.ts";
import { DEFAULT_CONFIG } from "../src/engine/model/optimize.ts";
import { readImage } from "../src/deno/image/mod.ts";
import { createEngine } from "../src/deno/stylizer.ts";
import type { Engine } from "../src/engine/model/stylizer.ts";
import type { RgbImage } from "../src/engine/image/types.ts";

/** The style loss Σ_l w_l·Σ(G_l(x) − G_l(style))² of two images at `size` px (longer side). */
export async function styleLossAt(
  engine: Engine,
  x: RgbImage,
  style: RgbImage,
  size: number,
): Promise<number> {
  const at = (img: RgbImage) =>
    toTensor(resize(img, ...fitLongerSide(img.width, img.height, size)));
  const layers = DEFAULT_CONFIG.styleLayers;
  const [gx, gs] = [await engine.tapGrams(at(x), layers), await engine.tapGrams(at(style), layers)];
  let loss = 0;
  layers.forEach((_, l) => {
    let sq = 0;
    for (let k = 0; k < gx[l].data.length; k++) sq += (gx[l].data[k] - gs[l].data[k]) ** 2;
    loss += DEFAULT_CONFIG.styleWeights[l] * sq;
  });
  return loss;
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: { size: { type: "string", default: "256" }, weights: { type: "string" } },
    allowPositionals: true,
  });
  if (positionals.length !== 2) {
    console.error("usage: deno task bench:style RESULT STYLE [--size 256]");
    Deno.exit(2);
  }
  const engine = await createEngine({ weights: values.weights });
  const [x, style] = await Promise.all(positionals.map((p) => readImage(p)));
  const loss = await styleLossAt(engine, x, style, Number(values.size));
  console.log(
    JSON.stringify({
      image: positionals[0],
      style: positionals[1],
      size: Number(values.size),
      style_loss: loss,
    }),
  );
  engine.dispose();
}
