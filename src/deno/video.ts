/**
 * `--video IN STYLE [STYLE...] -o OUT` from the command line. IN is a
 * folder of frames (PNG or JPEG, in name order, numbers by value) or, with
 * ffmpeg on PATH, a video file (its frames read out into a temporary
 * folder, removed after); OUT a folder of PNG frames (`OUT/<frame
 * name>.png`, each written when it is done) or a video file (.mp4, .webm,
 * …: the frames encoded by ffmpeg at the input's frame rate into a
 * temporary file renamed at the end). The frames are stylised by
 * src/engine/video/video.ts (each later frame from the last one warped by
 * the optical flow, held to it by the temporal term). Every input is
 * checked before the first frame: a missing ffmpeg, an empty folder, frames
 * of different sizes, an unwritable output end in one line and nothing
 * written. Prints only through `log` and `fail`; never exits.
 * @module
 */
import { extname, join, resolve } from "node:path";
import { UserError } from "../engine/errors.ts";
import { stylizeVideo } from "../engine/video/video.ts";
import { readHeader, readImage, writeImage } from "./image/mod.ts";
import { listImages, prepareOutputDir, stem } from "./batch.ts";
import { encodeFrames, extractFrames, isVideoPath, probeVideo, requireFfmpeg } from "./ffmpeg.ts";
import {
  checkOutput,
  EngineHolder,
  readStyles,
  type RunOptions,
  runSummary,
  scaleLogger,
  scheduleBase,
  shown,
  traceOf,
  writeJson,
} from "./run.ts";

/** Frames per second of a video file written from a folder of frames, without --fps. */
export const DEFAULT_FPS = 25;

/** A frame file's width and height, from its header (decoding it when the header does not say). */
async function frameSize(path: string): Promise<[number, number]> {
  let head: Uint8Array;
  try {
    using f = await Deno.open(path);
    const buf = new Uint8Array(256 * 1024);
    const n = await f.read(buf) ?? 0;
    head = buf.subarray(0, n);
  } catch (e) {
    throw new UserError(`${path}: cannot read (${(e as Error).message.split("\n")[0]})`);
  }
  const h = head.length ? readHeader(head) : null;
  if (h === null) throw new UserError(`${path}: not a PNG or JPEG image`);
  if (h.width !== undefined && h.height !== undefined) return [h.width, h.height];
  const img = await readImage(path);
  return [img.width, img.height];
}

/** Refuses frames whose size differs from the first one's, naming the first that does. */
async function checkFrameSizes(dir: string, files: string[]): Promise<void> {
  const [w0, h0] = await frameSize(join(dir, files[0]));
  for (const f of files.slice(1)) {
    const [w, h] = await frameSize(join(dir, f));
    if (w !== w0 || h !== h0) {
      throw new UserError(
        `--video: ${join(dir, f)} is ${w}×${h} but ${files[0]} is ${w0}×${h0}; ` +
          "every frame must have the same size",
      );
    }
  }
}

/** Where the frames come from: a folder's files, or a video's read out by ffmpeg. */
interface Source {
  dir: string;
  files: string[];
  /** Frames per second ("num/den"): the video's, else --fps or the default. */
  rate: string;
}

/** The frames of `input` (a folder, or a video read out into `work`). */
async function openSource(
  o: RunOptions,
  isDir: boolean,
  work: string,
  ffmpeg: { ffmpeg: string; ffprobe: string } | null,
): Promise<Source> {
  const input = o.contents;
  const fps = o.fps !== undefined ? `${o.fps}/1` : null;
  if (isDir) {
    const files = listImages(input, "--video");
    if (files.length === 0) {
      throw new UserError(`--video ${input}: no frames in the folder (no PNG or JPEG files)`);
    }
    return { dir: input, files, rate: fps ?? `${DEFAULT_FPS}/1` };
  }
  const { rate } = await probeVideo(ffmpeg!.ffprobe, input);
  const dir = join(work, "in");
  await Deno.mkdir(dir);
  await extractFrames(ffmpeg!.ffmpeg, input, dir);
  const files = listImages(dir, "--video");
  if (files.length === 0) throw new UserError(`--video ${input}: no frames in the video`);
  return { dir, files, rate: fps ?? rate };
}

/**
 * Runs a video as the CLI does; returns the exit code (0; 2 when the run
 * could not go on; 130 when interrupted).
 * @param fail prints one error line (even with --quiet)
 */
export async function runVideo(
  o: RunOptions,
  fail: (line: string, e?: UserError) => void,
  signal?: AbortSignal,
): Promise<number> {
  const log = (s: string) => o.quiet || console.error(s);
  const input = o.contents;
  let isDir: boolean;
  try {
    isDir = Deno.statSync(input).isDirectory;
  } catch {
    throw new UserError(`--video ${input}: no such file or folder`);
  }
  const toFile = isVideoPath(o.output);
  if (!toFile && [".png", ".jpg", ".jpeg"].includes(extname(o.output).toLowerCase())) {
    throw new UserError(
      `-o ${o.output}: --video writes a folder of frames or a video file (.mp4, .webm, …)`,
    );
  }
  const ffmpeg = !isDir
    ? requireFfmpeg(`--video ${input}: reading a video file`)
    : toFile
    ? requireFfmpeg(`-o ${o.output}: writing a video file`)
    : null;
  if (o.trace) await checkOutput(o.trace, [input]);
  const work = await Deno.makeTempDir({ prefix: "stylize-video-" });
  let undo = async () => {};
  try {
    // A folder's frames are checked before the output is made; a video's read out after.
    const early = isDir ? await openSource(o, true, work, ffmpeg) : null;
    if (early) await checkFrameSizes(early.dir, early.files);
    if (early && !toFile) checkDistinct(early.files);
    if (toFile) await checkOutput(o.output, [input]);
    else undo = await prepareOutputDir(o.output, isDir ? input : work);
    const src = early ?? await openSource(o, false, work, ffmpeg);
    if (!early) await checkFrameSizes(src.dir, src.files);
    const outDir = toFile ? join(work, "out") : o.output;
    if (toFile) await Deno.mkdir(outDir);
    const outName = (k: number) =>
      toFile ? `${String(k + 1).padStart(6, "0")}.png` : `${stem(src.files[k])}.png`;
    return await stylizeFrames(o, src, outDir, outName, fail, signal, async (n) => {
      if (!toFile) return `${n} frames written to ${resolve(o.output)}`;
      log(`encoding ${n} frames at ${src.rate} frames per second`);
      await encodeFrames(ffmpeg!.ffmpeg, outDir, src.rate, o.output);
      return `wrote ${resolve(o.output)} (${n} frames)`;
    });
  } finally {
    await undo();
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

/** Refuses two frames that would be written to the same file (a.png and a.jpg). */
function checkDistinct(files: string[]): void {
  const seen = new Map<string, string>();
  for (const f of files) {
    const other = seen.get(stem(f));
    if (other) {
      throw new UserError(`--video: ${other} and ${f} would both be written as ${stem(f)}.png`);
    }
    seen.set(stem(f), f);
  }
}

/** Stylises the frames into `outDir`; `finish` ends a complete run (and says what it wrote). */
async function stylizeFrames(
  o: RunOptions,
  src: Source,
  outDir: string,
  outName: (k: number) => string,
  fail: (line: string, e?: UserError) => void,
  signal: AbortSignal | undefined,
  finish: (frames: number) => Promise<string>,
): Promise<number> {
  const log = (s: string) => o.quiet || console.error(s);
  const n = src.files.length;
  const inputs = await readStyles(o);
  const holder = await EngineHolder.open(o, log);
  try {
    const tiles: number[] = [];
    const traces: Record<string, unknown>[] = [];
    const t0 = performance.now();
    let since = t0;
    const result = await stylizeVideo(holder.engine, {
      ...scheduleBase(o, inputs, holder, log, signal),
      frames: {
        count: n,
        read: async (k) => ({
          name: stem(src.files[k]),
          image: await readImage(join(src.dir, src.files[k])),
        }),
      },
      videoIters: o.videoIters,
      temporalWeight: o.temporalWeight,
      onScale: scaleLogger(holder, log, tiles),
      onFrameStart: (k, frame) => {
        tiles.length = 0;
        log(`frame ${k + 1}/${n}: ${src.files[k]} (${frame.image.width}×${frame.image.height})`);
      },
      onFrame: async (k, frame, x, r) => {
        holder.engine = r.engine;
        const path = join(outDir, outName(k));
        await writeImage(path, shown(x, o, frame.image));
        const now = performance.now();
        const secs = (now - since) / 1000;
        since = now;
        log(`frame ${k + 1}/${n} done in ${secs.toFixed(1)}s, ${runSummary(r)}`);
        if (o.trace) {
          traces.push(traceOf(o, holder.engine, r, secs, [...tiles], holder.priorPeak, path));
        }
      },
    });
    holder.engine = result.engine;
    const secs = (performance.now() - t0) / 1000;
    const flow = `optical flow ${(result.flowMs / 1000).toFixed(1)}s`;
    if (o.trace) {
      await writeJson(o.trace, {
        mode: "video",
        seconds: secs,
        flowMs: result.flowMs,
        frames: traces,
      });
    }
    if (result.failed) {
      const k = result.frames;
      fail(`frame ${k + 1}: ${result.failed}; stopped after ${k} frame${k === 1 ? "" : "s"}`);
      return 2;
    }
    if (result.stopped) {
      log(`interrupted after ${result.frames} of ${n} frames`);
      return 130;
    }
    const what = await finish(n);
    log(`video: ${what} in ${secs.toFixed(1)}s (${flow})`);
    return 0;
  } finally {
    holder.dispose();
  }
}
