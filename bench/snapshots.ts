/**
 * `deno run -A bench/snapshots.ts [--sizes 256,683] [--iters 40] [--rounds 3]`:
 * what the lost-device snapshots cost a run — the library's `stylize` (the
 * CLI's loop: batches, read-back, submits) on the bundled images at each
 * size, one scale, with the optimiser's state saved at every read-back (as
 * the CLI and the page run) and without, alternating; prints ms per
 * iteration after the first of each, their ratio per round, and the median.
 * @module
 */
import { parseArgs } from "node:util";
import { createEngine, DEFAULT_CONFIG, readImage, stylize } from "../mod.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    sizes: { type: "string", default: "256,683" },
    iters: { type: "string", default: "40" },
    rounds: { type: "string", default: "3" },
    weights: { type: "string" },
  },
});
const engine = await createEngine({ weights: values.weights });
const content = await readImage(new URL("../examples/chelsea.png", import.meta.url).pathname);
const style = await readImage(new URL("../examples/starry_night.jpg", import.meta.url).pathname);
const iters = Number(values.iters);

/** ms per iteration after the first, of one run at longer side `size`. */
async function run(size: number, keep: boolean): Promise<number> {
  const r = await stylize(engine, {
    content,
    styles: [style],
    size,
    minSize: size,
    iters,
    config: DEFAULT_CONFIG,
    // A recover function makes the loop keep its state (it is never called here).
    recover: keep ? () => Promise.resolve(engine) : undefined,
  });
  const recs = r.scales[0].records;
  return (recs.at(-1)!.ms - recs[0].ms) / (recs.length - 1);
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
for (const spec of values.sizes.split(",")) {
  const size = Number(spec);
  await run(size, false); // compiles this size's plans
  const ratios = [];
  for (let k = 0; k < Number(values.rounds); k++) {
    const plain = await run(size, false);
    const kept = await run(size, true);
    ratios.push(kept / plain);
    console.log(
      `${spec} round ${k + 1}: ${plain.toFixed(1)} ms/iter without snapshots, ` +
        `${kept.toFixed(1)} with (${kept / plain > 1 ? "+" : ""}${
          ((kept / plain - 1) * 100).toFixed(1)
        }%)`,
    );
  }
  console.log(`${spec}: median ratio ${median(ratios).toFixed(3)}`);
}
engine.dispose();
