import assert from "node:assert/strict";
import { UserError } from "../../src/engine/errors.ts";
import { flagHint, parseRun } from "../../src/deno/cli.ts";
import { cliRecord } from "../../src/deno/settings_png.ts";
import { DEFAULT_FORM, formFromRecord, pageRecord, parseSettings } from "../../src/web/settings.ts";
import { pageMessage } from "../../src/web/status.ts";
import { nonFiniteReason } from "../../src/engine/model/optimize.ts";
import type { Segment } from "../../src/engine/model/stylizer.ts";

Deno.test("settings: the page's defaults are the CLI's (size, iterations, weights, decay)", () => {
  const cli = parseRun(["content.png", "style.png"]);
  const page = parseSettings(DEFAULT_FORM);
  assert.deepEqual(page.config, cli.config);
  assert.deepEqual([page.size, page.styleSize], [cli.size, cli.styleSize]);
});

Deno.test("settings: fields as the CLI's flags give the CLI's configuration", () => {
  const cli = parseRun([
    "c.png",
    "s.png",
    "--size",
    "64",
    "--style-size",
    "48",
    "--iters",
    "10",
    "--lr",
    "5",
    "--content-weight",
    "1e-4",
    "--tv-weight",
    "0",
  ]);
  const page = parseSettings({
    ...DEFAULT_FORM,
    size: "64",
    styleSize: "48",
    iters: "10",
    lr: "5",
    contentWeight: "1e-4",
    tvWeight: "0",
  });
  assert.deepEqual(page.config, cli.config);
  assert.deepEqual([page.size, page.styleSize], [64, 48]);
});

Deno.test("settings: style strength multiplies every style-layer weight", () => {
  const base = parseSettings(DEFAULT_FORM).config.styleWeights;
  const got = parseSettings({ ...DEFAULT_FORM, strength: "2.5" }).config.styleWeights;
  assert.deepEqual(got, base.map((w) => w * 2.5));
});

Deno.test("settings: an empty field takes its default", () => {
  const empty = Object.fromEntries(
    Object.keys(DEFAULT_FORM).map((k) => [k, " "]),
  );
  assert.deepEqual(
    parseSettings(empty as unknown as typeof DEFAULT_FORM),
    parseSettings(DEFAULT_FORM),
  );
});

Deno.test("settings: a bad value is a UserError naming the field", () => {
  const cases: [Partial<typeof DEFAULT_FORM>, RegExp][] = [
    [{ size: "abc" }, /^Output size: "abc" is not a number/],
    [{ size: "8" }, /^Output size: 8 must be at least 16/],
    [{ iters: "2.5" }, /^Iterations: "2.5" is not an integer/],
    [{ iters: "0" }, /^Iterations: 0 must be at least 1/],
    [{ strength: "-1" }, /^Style strength: -1 must be ≥ 0/],
    [{ styleSize: "12" }, /^Style size: 12 must be at least 16/],
    [{ lr: "1e999" }, /^Learning rate: "1e999" is not a number/],
    [{ styleWeights: "1,2" }, /^Style weights: give 4 weights, one per style layer/],
    [{ styleWeights: "1,x,3,4" }, /^Style weights: "x" is not a number/],
    [{ avgDecay: "1" }, /^Iterate averaging: 1 must be below 1/],
    [{ seed: "-1" }, /^Seed: -1 must be ≥ 0/],
  ];
  for (const [fields, message] of cases) {
    assert.throws(
      () => parseSettings({ ...DEFAULT_FORM, ...fields }),
      (e) => e instanceof UserError && message.test(e.message),
    );
  }
});

Deno.test("the engine's messages name no CLI flag; the CLI adds its flags, the page its fields", () => {
  // The engine's own messages: one term beyond 32-bit floats, then the gradient's flag.
  const segments: Segment[] = [
    {
      start: 0,
      count: 1,
      kind: "content",
      what: "the content loss",
      weight: { name: "the content weight", setting: "content-weight" },
    },
    {
      start: 1,
      count: 1,
      kind: "style",
      what: "the style loss at fire2",
      weight: { name: "the style weights", setting: "style-weights" },
    },
    {
      start: 2,
      count: 1,
      kind: "tv",
      what: "the total-variation loss",
      weight: { name: "the TV weight", setting: "tv-weight" },
    },
  ];
  const parts = new Float32Array([Infinity, 0, 0, 0]);
  const content = nonFiniteReason(2, parts, segments, 3)!;
  assert.equal(
    content.message,
    "iteration 3: the content loss is Infinity (beyond 32-bit floats); lower the content weight",
  );
  assert.equal(flagHint(content), " (--content-weight)");
  assert.equal(pageMessage(content), `${content.message} (Content weight)`);
  parts[0] = 0;
  new Uint32Array(parts.buffer)[3] = 1;
  const gradient = nonFiniteReason(2, parts, segments, 3)!;
  assert.doesNotMatch(gradient.message, /--/);
  assert.equal(
    flagHint(gradient),
    " (--content-weight, --style-weights or --strength, --tv-weight)",
  );
  assert.equal(
    pageMessage(gradient),
    `${gradient.message} (Content weight, Style strength, TV weight)`,
  );
  const plain = new UserError("a 9000×9000 image needs 3 GiB; use a smaller output size", ["size"]);
  assert.equal(
    pageMessage(plain),
    "a 9000×9000 image needs 3 GiB; use a smaller output size (Output size)",
  );
  assert.equal(flagHint(plain), " (--size)");
});

Deno.test("settings: a page run's record restores the form that made it", () => {
  const form = {
    ...DEFAULT_FORM,
    size: "300",
    styleSize: "200",
    minSize: "120",
    iters: "30",
    firstIters: "45",
    strength: "2.5",
    styleWeights: "1,2,3,4",
    lr: "4",
    avgDecay: "0.5",
    originalColors: "true",
    init: "random",
    seed: "9",
  };
  const settings = parseSettings(form);
  const record = pageRecord(settings, {
    content: "cat.png",
    styles: ["a.jpg", "b.png"],
    scales: [[120, 80], [170, 113], [240, 160], [300, 200]],
    steps: 135,
    masks: false,
  });
  const { form: restored, ignored, masks } = formFromRecord(record);
  assert.deepEqual([ignored, masks], [[], false]);
  assert.deepEqual(parseSettings({ ...DEFAULT_FORM, ...restored }), settings);
});

Deno.test("settings: a CLI run's record gives the page the CLI's configuration", () => {
  const flags = [
    "c.png",
    "s.png",
    "--size",
    "64",
    "--iters",
    "10",
    "--strength",
    "3",
    "--seed",
    "2",
  ];
  const cli = parseRun([...flags, "--init", "random", "--original-colors", "--tv-weight", "0"]);
  const record = cliRecord(cli, { scales: [[64, 43]], steps: 10 });
  const { form, ignored } = formFromRecord(record);
  assert.deepEqual(ignored, []);
  const page = parseSettings({ ...DEFAULT_FORM, ...form });
  assert.deepEqual(page.config, cli.config);
  assert.deepEqual(
    [page.size, page.minSize, page.init, page.seed, page.originalColors],
    [cli.size, cli.minSize, "random", 2, true],
  );
});

Deno.test("settings: what the page cannot set is named, the rest restored", () => {
  const cli = parseRun([
    "c.png",
    "s.png",
    "t.png",
    "--pooling",
    "avg",
    "--style-blend",
    "1,2",
    "--content-layer",
    "fire3",
    "--lr-decay-at",
    "5",
    "--iters",
    "20",
  ]);
  const { form, ignored } = formFromRecord(cliRecord(cli, { scales: [[512, 341]], steps: 20 }));
  assert.deepEqual(ignored, [
    "content layer fire3",
    "avg pooling",
    "style blend 1,2",
    "learning-rate drop at 5",
  ]);
  assert.equal(form.iters, "20");
});

Deno.test("settings: a masked run's record (CLI or page) says masks, and the page restores the rest", () => {
  const cli = parseRun([
    "c.png",
    "s.png",
    "t.png",
    "--style-masks",
    "a.png,b.png",
    "--iters",
    "12",
  ]);
  const record = cliRecord(cli, { scales: [[512, 341]], steps: 12 });
  assert.equal(record.masks, true);
  const { form, ignored, masks } = formFromRecord(record);
  assert.deepEqual([ignored, masks, form.iters], [[], true, "12"]);
  const page = pageRecord(parseSettings(DEFAULT_FORM), {
    content: "c.png",
    styles: ["s.png", "t.png"],
    scales: [[512, 341]],
    steps: 12,
    masks: true,
  });
  assert.equal(page.masks, true);
  assert.equal(cliRecord(parseRun(["c.png", "s.png"]), { scales: [], steps: 0 }).masks, false);
});

Deno.test("settings: Max GPU memory as the CLI's --max-gpu-memory (empty: none)", () => {
  assert.equal(parseSettings(DEFAULT_FORM).maxGpuMemory, undefined);
  for (const v of ["1.5G", "800M", "400000"]) {
    const cli = parseRun(["c.png", "s.png", "--max-gpu-memory", v]);
    assert.equal(
      parseSettings({ ...DEFAULT_FORM, maxGpuMemory: v }).maxGpuMemory,
      cli.maxGpuMemory,
    );
  }
  assert.throws(
    () => parseSettings({ ...DEFAULT_FORM, maxGpuMemory: "lots" }),
    (e) => e instanceof UserError && /^Max GPU memory: "lots" is not a size/.test(e.message),
  );
});
