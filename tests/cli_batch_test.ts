/**
 * `--batch IN_DIR STYLE -o OUT_DIR` from the command line: each output has
 * the pixels of a single run of its image, an undecodable file is reported
 * in one line while the others are written (exit 2 at the end), a rerun
 * skips what exists and `--overwrite` redoes it; bad folders end in one
 * line and exit 2 with nothing written.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readImage, writeImage } from "../src/deno/image/mod.ts";
import { resize } from "../src/engine/image/mod.ts";
import { exists, inTempDir, REPO, runCli } from "./cli_run.ts";

const EX = join(REPO, "examples");
const STYLE = join(EX, "starry_night.jpg");
/** Tiny, fast, and two scales (so the style cache serves several sizes). */
const SMALL = ["--size", "48", "--min-size", "32", "--iters", "2", "--seed", "3"];

function listDir(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

/** The input folder: two photos (PNG and JPEG, different shapes), an undecodable file, a text file. */
async function inputs(dir: string): Promise<string> {
  const input = join(dir, "in");
  await Deno.mkdir(input);
  const cat = await readImage(join(EX, "chelsea.png"));
  await writeImage(join(input, "cat.png"), resize(cat, 60, 40));
  await writeImage(join(input, "sky.jpg"), await readImage(join(EX, "hubble_deep_field.jpg")));
  await Deno.writeTextFile(join(input, "broken.png"), "not an image");
  await Deno.writeTextFile(join(input, "notes.txt"), "ignored: not .png or .jpg");
  return input;
}

Deno.test("--batch: each output has its single run's pixels; an undecodable file is reported in one line, the others written, exit 2; a rerun skips what exists; --overwrite redoes it", async () => {
  await inTempDir(async (dir) => {
    const input = await inputs(dir);
    const out = join(dir, "out");
    const first = await runCli(dir, ["--batch", input, STYLE, "-o", out, ...SMALL]);
    assert.equal(first.code, 2, first.stderr);
    assert.deepEqual(listDir(out), ["cat.png", "sky.png"]);
    const errors = first.stderr.split("\n").filter((l) => l.startsWith("stylize: "));
    assert.equal(errors.length, 2, first.stderr);
    assert.match(errors[0], /broken\.png: not a PNG or JPEG image; skipped$/);
    assert.match(errors[1], /1 of 3 images failed: broken\.png$/);
    assert.match(first.stderr, /image 2\/3: cat\.png \(60×40\)[\s\S]*image 3\/3: sky\.jpg/);

    for (const name of ["cat.png", "sky.jpg"]) {
      const single = join(dir, `single-${name}.png`);
      const r = await runCli(dir, [join(input, name), STYLE, "-o", single, ...SMALL, "-q"]);
      assert.equal(r.code, 0, r.stderr);
      const [a, b] = [
        await readImage(single),
        await readImage(join(out, name.replace(/\..*/, ".png"))),
      ];
      assert.deepEqual([b.width, b.height], [a.width, a.height]);
      assert.ok(a.data.every((v, i) => v === b.data[i]), `${name}: the batch's pixels differ`);
    }

    await Deno.remove(join(input, "broken.png"));
    const stamp = (f: string) => Deno.statSync(join(out, f)).mtime!.getTime();
    const before = ["cat.png", "sky.png"].map(stamp);
    const again = await runCli(dir, ["--batch", input, STYLE, "-o", out, ...SMALL]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /2 of 2 images already in .*: skipped \(--overwrite to redo them\)/);
    assert.deepEqual(["cat.png", "sky.png"].map(stamp), before);

    const cat = await readImage(join(out, "cat.png"));
    const redo = await runCli(dir, ["--batch", input, STYLE, "-o", out, ...SMALL, "--overwrite"]);
    assert.equal(redo.code, 0, redo.stderr);
    assert.match(redo.stderr, /batch: 2 of 2 images written/);
    assert.ok(stamp("cat.png") > before[0] && stamp("sky.png") > before[1]);
    assert.deepEqual((await readImage(join(out, "cat.png"))).data, cat.data);
    assert.deepEqual(listDir(out), ["cat.png", "sky.png"], "no temporary file left");
  });
});

Deno.test("bad --batch folders end in one line and exit 2, with nothing written: no -o, not a folder, no images, the input folder as output, an output that cannot be a folder, a name twice", async () => {
  await inTempDir(async (dir) => {
    const empty = join(dir, "empty");
    await Deno.mkdir(empty);
    await Deno.writeTextFile(join(empty, "readme.txt"), "no images");
    const twice = join(dir, "twice");
    await Deno.mkdir(twice);
    await Deno.copyFile(join(EX, "chelsea.png"), join(twice, "a.png"));
    await Deno.copyFile(join(EX, "starry_night.jpg"), join(twice, "a.jpg"));
    const one = join(dir, "one");
    await Deno.mkdir(one);
    await Deno.copyFile(join(EX, "chelsea.png"), join(one, "a.png"));
    await Deno.writeTextFile(join(dir, "afile"), "");
    const cases: [string[], RegExp][] = [
      [["--batch", twice, STYLE], /--batch: give the output with -o \(a folder\)/],
      [["--batch", join(dir, "afile"), STYLE, "-o", "o"], /--batch .*afile: not a folder/],
      [["--batch", join(dir, "nope"), STYLE, "-o", "o"], /--batch .*nope: cannot read/],
      [["--batch", empty, STYLE, "-o", "o"], /--batch .*empty: no PNG or JPEG files in it/],
      [["--batch", one, STYLE, "-o", `${one}/`], /the output folder is the input folder/],
      [["--batch", twice, "-o", "o"], /--batch: need at least one STYLE image/],
      [["--batch", one, STYLE, "-o", "afile/o"], /afile\/o: cannot make the output folder/],
      [["--batch", join(twice, ".."), STYLE, "-o", "o", "--save-every", "1"], /--save-every/],
      [
        ["--batch", join(twice, ".."), STYLE, "-o", "o", "--video-iters", "3"],
        /--video-iters goes with --video/,
      ],
      [
        ["--batch", twice, STYLE, "-o", "o"],
        /a\.jpg and a\.png would both be written as a\.png; rename one/,
      ],
    ];
    for (const [args, message] of cases) {
      const r = await runCli(dir, [...args, ...SMALL]);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /^stylize: /);
      assert.match(lines[0], message);
      assert.ok(!exists(join(dir, "o")), "nothing written");
    }
  });
});
