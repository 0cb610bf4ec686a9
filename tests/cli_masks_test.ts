/**
 * `--style-masks` from the command line: a masked run lands on the oracle's
 * masked Adam loop (tests/goldens/masked_run.json, made by
 * tests/oracle/oracle.py from the bundled images and masks), its contact
 * sheet shows the masks, and bad masks end in one line, exit code 2 and no
 * output.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readImage } from "../src/deno/image/mod.ts";
import { exists, inTempDir, REPO, runCli } from "./cli_run.ts";

const EX = join(REPO, "examples");
const FIXTURE = JSON.parse(Deno.readTextFileSync(join(REPO, "tests/goldens/masked_run.json")));
/** The oracle's images: Chelsea at 96×64, each style 96 px on its longer side. */
const ARGS = [
  join(EX, "chelsea.png"),
  join(EX, "starry_night.jpg"),
  join(EX, "hubble_deep_field.jpg"),
  "--style-masks",
  `${join(EX, "chelsea_background.png")},${join(EX, "chelsea_cat.png")}`,
  "--size",
  "96",
  "--min-size",
  "96",
  "--style-size",
  "96",
  "--reference-pixels",
  "0",
];

Deno.test("a --style-masks run lands on the oracle's masked run: each of its 30 losses within 1% (0.7% measured at the last)", async () => {
  await inTempDir(async (dir) => {
    const r = await runCli(dir, [
      ...ARGS,
      "--iters",
      String(FIXTURE.iters),
      "--lr-decay-at",
      String(FIXTURE.decayAt),
      "--trace",
      "t.json",
      "-q",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const trace = JSON.parse(await Deno.readTextFile(join(dir, "t.json")));
    assert.deepEqual(trace.scales[0].size, FIXTURE.size);
    const losses: number[] = trace.iterations.map((i: { loss: number }) => i.loss);
    assert.equal(losses.length, FIXTURE.losses.length);
    losses.forEach((l, i) => {
      const e = Math.abs(l - FIXTURE.losses[i]) / FIXTURE.losses[i];
      assert.ok(e <= 0.01, `iteration ${i}: ${l} vs the oracle's ${FIXTURE.losses[i]} (${e})`);
    });
    assert.deepEqual(trace.config.masks.length, 2);
  });
});

Deno.test("--style-masks with --save-every: the contact sheet shows each style and its mask", async () => {
  await inTempDir(async (dir) => {
    const r = await runCli(dir, [
      ...ARGS,
      "--iters",
      "2",
      "--save-every",
      "1",
      "-o",
      "o.png",
      "-q",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const sheet = await readImage(join(dir, "o-stages.png"));
    // Tiles 64 px high, 8 px apart: content 96, starry 102, its mask 96, hubble 73, its
    // mask 96, stage 1 96, the result 96.
    const widths = [96, 102, 96, 73, 96, 96, 96];
    assert.equal(sheet.height, 64 + 16);
    assert.equal(sheet.width, widths.reduce((a, b) => a + b + 8, 8));
  });
});

Deno.test("bad --style-masks end in one line and exit 2, with no output: a count that differs, a mask that does not decode, a directory, with --style-blend", async () => {
  await inTempDir(async (dir) => {
    const bad = join(dir, "bad.png");
    await Deno.writeTextFile(bad, "not an image");
    const cases: [string[], RegExp][] = [
      [
        ["--style-masks", join(EX, "chelsea_cat.png")],
        /--style-masks: 2 style images need 2 masks, one each; got 1/,
      ],
      [["--style-masks", `${bad},${join(EX, "chelsea_cat.png")}`], /bad\.png: /],
      [["--style-masks", `${dir},${join(EX, "chelsea_cat.png")}`], /is a directory/],
      [[
        "--style-masks",
        `${join(EX, "chelsea_cat.png")},${join(EX, "chelsea_cat.png")}`,
        "--style-blend",
        "1,2",
      ], /--style-blend and --style-masks/],
    ];
    for (const [extra, message] of cases) {
      const args = [...ARGS.slice(0, 3), ...extra, "--size", "64", "--iters", "1", "-o", "out.png"];
      const r = await runCli(dir, args);
      assert.equal(r.code, 2, `${extra.join(" ")}: ${r.stderr}`);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /^stylize: /);
      assert.match(lines[0], message);
      assert.ok(!exists(join(dir, "out.png")), "no output file");
    }
  });
});
