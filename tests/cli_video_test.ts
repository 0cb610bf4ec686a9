/**
 * `--video IN STYLE -o OUT` from the command line: frames from a folder (in
 * name order, numbers by value) or a video file, to a folder of PNG frames
 * or a video file (frame count and rate kept); the first frame is a still
 * run, each later one runs `--video-iters` at the output size with the
 * temporal term, and survives a lost device; bad inputs end in one line,
 * exit 2 and nothing written. The frames are a tiny crop of the synthetic
 * clip of bench/make_clip.ts.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readImage, writeImage } from "../src/deno/image/mod.ts";
import { onPath } from "../src/deno/ffmpeg.ts";
import { blurSource } from "../bench/flow_epe.ts";
import { clipFrame, DEFAULT_MOTION } from "../bench/make_clip.ts";
import { inTempDir, REPO, runCli } from "./cli_run.ts";

const EX = join(REPO, "examples");
const STYLE = join(EX, "starry_night.jpg");
const HAS_FFMPEG = onPath("ffmpeg") !== null && onPath("ffprobe") !== null;

function listDir(dir: string): string[] {
  return [...Deno.readDirSync(dir)].map((e) => e.name).sort();
}

/** `names.length` frames of the clip at 64×44 in `dir` (made), named as given. */
async function frames(dir: string, names: string[]): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  const src = blurSource(await readImage(join(EX, "chelsea.png")), 0.6);
  for (const [t, name] of names.entries()) {
    await writeImage(join(dir, name), clipFrame(src, 64, 44, t, DEFAULT_MOTION));
  }
}

/** Runs a command; its stdout. */
async function tool(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  return new TextDecoder().decode(out.stdout);
}

/** A video file's frame count, rate and size (ffprobe). */
async function probe(path: string): Promise<{ frames: number; rate: string; size: number[] }> {
  const s = JSON.parse(
    await tool("ffprobe", [
      "-v",
      "error",
      "-count_frames",
      "-select_streams",
      "v:0",
      "-show_entries",
      "stream=nb_read_frames,r_frame_rate,width,height",
      "-of",
      "json",
      path,
    ]),
  ).streams[0];
  return { frames: Number(s.nb_read_frames), rate: s.r_frame_rate, size: [s.width, s.height] };
}

Deno.test("--video: a folder of frames (in name order, numbers by value) → a folder of PNG frames; the first is its still run's pixels (--original-colors too), each later one runs --video-iters at the output size with the temporal term; a device lost in frame 2 is resumed and the flow goes on on the new device", async () => {
  await inTempDir(async (dir) => {
    await frames(join(dir, "in"), ["f9.png", "f10.png", "f11.png"]);
    // --original-colors: each frame written with its own frame's colours (the still's too).
    const flags = ["--size", "64", "--iters", "2", "--seed", "1", "--original-colors"];
    const r = await runCli(dir, [
      "--video",
      "in",
      STYLE,
      "-o",
      "out",
      ...flags,
      "--video-iters",
      "4",
      "--trace",
      "t.json",
    ], { STYLIZE_FAULT: "lose-device@3" });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /frame 1\/3: f9\.png[\s\S]*frame 2\/3: f10\.png[\s\S]*frame 3\/3: f11/);
    assert.match(r.stderr, /lost by STYLIZE_FAULT at iteration 3; resumed on a new device/);
    assert.deepEqual(listDir(join(dir, "out")), ["f10.png", "f11.png", "f9.png"]);
    const trace = JSON.parse(await Deno.readTextFile(join(dir, "t.json")));
    assert.equal(trace.mode, "video");
    assert.deepEqual(
      trace.frames.map((f: { output: string }) => f.output.split("/").pop()),
      ["f9.png", "f10.png", "f11.png"],
    );
    type Frame = {
      scales: { iters: number; size: number[] }[];
      iterations: { temporal?: number }[];
    };
    const [first, ...later] = trace.frames as Frame[];
    assert.ok(first.iterations.every((i) => i.temporal === undefined));
    for (const f of later) {
      assert.deepEqual(f.scales.map((s) => [s.iters, ...s.size]), [[4, 44, 64]]);
      // The first iterate is ω where the flow is trusted (the term 0 there), then the term acts.
      assert.ok(f.iterations.slice(1).every((i) => i.temporal! > 0), "the temporal term is on");
    }
    const still = await runCli(dir, [join("in", "f9.png"), STYLE, "-o", "still.png", ...flags]);
    assert.equal(still.code, 0, still.stderr);
    const [a, b] = [
      await readImage(join(dir, "still.png")),
      await readImage(join(dir, "out/f9.png")),
    ];
    assert.ok(a.data.every((v, i) => v === b.data[i]), "the first frame is its still run");
  });
});

Deno.test({
  name:
    "--video with ffmpeg: a 3-frame .mp4 in and out keeps the frame count and rate; to a folder, frames 000001.png …" +
    (HAS_FFMPEG ? "" : " (not run: no ffmpeg and ffprobe on PATH)"),
  ignore: !HAS_FFMPEG,
  fn: async () => {
    await inTempDir(async (dir) => {
      await frames(join(dir, "in"), ["1.png", "2.png", "3.png"]);
      await tool("ffmpeg", [
        "-v",
        "error",
        "-framerate",
        "12",
        "-i",
        join(dir, "in/%d.png"),
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        join(dir, "in.mp4"),
      ]);
      const flags = ["--size", "64", "--iters", "1", "--video-iters", "1", "-q"];
      const r = await runCli(dir, ["--video", "in.mp4", STYLE, "-o", "out.mp4", ...flags]);
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(await probe(join(dir, "out.mp4")), {
        frames: 3,
        rate: "12/1",
        size: [64, 44],
      });
      const f = await runCli(dir, ["--video", "in.mp4", STYLE, "-o", "frames", ...flags]);
      assert.equal(f.code, 0, f.stderr);
      assert.deepEqual(listDir(join(dir, "frames")), [1, 2, 3].map((k) => `00000${k}.png`));
      assert.deepEqual(listDir(dir), ["frames", "in", "in.mp4", "out.mp4"], "nothing else left");
    });
  },
});

Deno.test("bad --video inputs end in one line and exit 2, with nothing written: an empty folder, frames of different sizes, a video file or a video output without ffmpeg on PATH, an unwritable output, an image as output", async () => {
  await inTempDir(async (dir) => {
    await frames(join(dir, "in"), ["a.png", "b.png"]);
    await Deno.mkdir(join(dir, "empty"));
    await frames(join(dir, "sizes"), ["a.png"]);
    await writeImage(join(dir, "sizes/b.png"), await readImage(join(EX, "chelsea_cat.png")));
    await Deno.writeTextFile(join(dir, "clip.mp4"), "not read: no ffmpeg");
    await Deno.writeTextFile(join(dir, "afile"), "");
    const noFfmpeg = { PATH: join(dir, "empty") };
    const cases: [string[], RegExp, Record<string, string>?][] = [
      [["--video", "empty", "-o", "out"], /--video empty: no frames in the folder/],
      [
        ["--video", "sizes", "-o", "out"],
        /sizes\/b\.png is \d+×\d+ but a\.png is 64×44; every frame/,
      ],
      [
        ["--video", "clip.mp4", "-o", "out"],
        /--video clip\.mp4: reading a video file needs ffmpeg, which is not on PATH: install it .*apt-get install ffmpeg.* or use a folder of frames/,
        noFfmpeg,
      ],
      [
        ["--video", "in", "-o", "out.mp4"],
        /-o out\.mp4: writing a video file needs ffmpeg/,
        noFfmpeg,
      ],
      [["--video", "in", "-o", "afile/out"], /afile\/out: cannot make the output folder/],
      [
        ["--video", "in", "-o", "afile/out.mp4"],
        /afile\/out\.mp4: output directory .* not writable/,
      ],
      [
        ["--video", "in", "-o", "out.png"],
        /-o out\.png: --video writes a folder of frames or a video/,
      ],
      [["--video", "missing", "-o", "out"], /--video missing: no such file or folder/],
      [["--video", "in", "--batch", "in", "-o", "out"], /--batch and --video: give one/],
    ];
    for (const [args, message, env] of cases) {
      const r = await runCli(dir, [...args, STYLE, "--size", "32", "--iters", "1"], env);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /^stylize: /);
      assert.match(lines[0], message);
      assert.deepEqual(
        listDir(dir),
        ["afile", "clip.mp4", "empty", "in", "sizes"],
        `${args.join(" ")}: nothing written`,
      );
    }
  });
});

Deno.test({
  name:
    "a video that cannot go on (the device lost three times in frame 2) ends in one line and exit 2, and leaves no video file",
  ignore: !HAS_FFMPEG,
  fn: async () => {
    await inTempDir(async (dir) => {
      await frames(join(dir, "in"), ["a.png", "b.png"]);
      const r = await runCli(dir, [
        "--video",
        "in",
        STYLE,
        "-o",
        "out.mp4",
        "--size",
        "32",
        "--iters",
        "2",
        "--video-iters",
        "8",
        "-q",
      ], { STYLIZE_FAULT: "lose-device@3,4,5" });
      assert.equal(r.code, 2, r.stderr);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(lines[0], /^stylize: frame 2: .*3 devices lost.*stopped after 1 frame/);
      assert.deepEqual(listDir(dir), ["in"], "no video file, no temporary file");
    });
  },
});
