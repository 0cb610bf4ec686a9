/**
 * Video files through ffmpeg (Debian's `ffmpeg` package, found on PATH):
 * a video's frame rate and frames read out as PNG files, and PNG frames
 * encoded into a video file. Everything fails as one-line
 * {@link UserError}s; nothing here prints.
 * @module
 */
import { join } from "node:path";
import { UserError } from "../engine/errors.ts";

/** Output extensions written as video files through ffmpeg (anything else is a folder). */
export const VIDEO_EXTENSIONS = ["mp4", "m4v", "mov", "mkv", "webm", "avi", "gif"];

/** Whether `path` names a video file by its extension (see {@link VIDEO_EXTENSIONS}). */
export function isVideoPath(path: string): boolean {
  const m = /\.([^./\\]+)$/.exec(path);
  return m !== null && VIDEO_EXTENSIONS.includes(m[1].toLowerCase());
}

/** The path of an executable `name` on PATH, or null. */
export function onPath(name: string): string | null {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      const st = Deno.statSync(p);
      if (st.isFile && (st.mode === null || (st.mode & 0o111) !== 0)) return p;
    } catch { /* not there */ }
  }
  return null;
}

/**
 * The ffmpeg and ffprobe executables, or a UserError saying to install
 * ffmpeg or use a folder of frames (`why`: what needed them).
 */
export function requireFfmpeg(why: string): { ffmpeg: string; ffprobe: string } {
  const ffmpeg = onPath("ffmpeg");
  const ffprobe = onPath("ffprobe");
  if (!ffmpeg || !ffprobe) {
    throw new UserError(
      `${why} needs ffmpeg, which is not on PATH: install it (Debian/Ubuntu: ` +
        "apt-get install ffmpeg) or use a folder of frames instead",
    );
  }
  return { ffmpeg, ffprobe };
}

/** Runs a command to its end; its stderr's last line in a UserError about `what` if it fails. */
async function runTool(cmd: string, args: string[], what: string): Promise<string> {
  let out;
  try {
    out = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" })
      .output();
  } catch (e) {
    throw new UserError(`${what}: cannot run ${cmd} (${(e as Error).message.split("\n")[0]})`);
  }
  if (out.code !== 0) {
    const lines = new TextDecoder().decode(out.stderr).trim().split("\n");
    throw new UserError(`${what}: ${cmd} failed (${lines.at(-1)?.trim() || `exit ${out.code}`})`);
  }
  return new TextDecoder().decode(out.stdout);
}

/** A video's first video stream: its frame rate (frames per second, as a fraction "num/den"). */
export async function probeVideo(ffprobe: string, path: string): Promise<{ rate: string }> {
  const text = await runTool(ffprobe, [
    "-v",
    "error",
    "-select_streams",
    "v:0",
    "-show_entries",
    "stream=avg_frame_rate,r_frame_rate",
    "-of",
    "json",
    path,
  ], path);
  const stream = (JSON.parse(text).streams ?? [])[0];
  if (!stream) throw new UserError(`${path}: no video stream in the file`);
  const ok = (r?: string) => r && /^\d+\/\d+$/.test(r) && !/^0\/|\/0$/.test(r) ? r : null;
  const rate = ok(stream.avg_frame_rate) ?? ok(stream.r_frame_rate);
  if (!rate) throw new UserError(`${path}: the video stream has no frame rate`);
  return { rate };
}

/**
 * Every frame of a video as `dir/000001.png` … (each decoded frame once, in
 * order, none duplicated or dropped), in 8-bit RGB.
 */
export async function extractFrames(ffmpeg: string, path: string, dir: string): Promise<void> {
  await runTool(ffmpeg, [
    "-nostdin",
    "-v",
    "error",
    "-i",
    path,
    "-map",
    "0:v:0",
    // Each decoded frame once (-fps_mode's older name: ffmpeg 4 has only this one).
    "-vsync",
    "passthrough",
    "-pix_fmt",
    "rgb24",
    join(dir, "%06d.png"),
  ], path);
}

/** The encoder's settings for a video file by its extension. */
function encoderArgs(path: string): string[] {
  const ext = path.slice(path.lastIndexOf(".") + 1).toLowerCase();
  // x264 and VP9 in 4:2:0 need even sides: a last row or column of black where one is odd.
  const even = ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"];
  if (ext === "webm") return [...even, "-c:v", "libvpx-vp9", "-crf", "24", "-b:v", "0"];
  if (ext === "gif") return [];
  if (ext === "avi") return ["-c:v", "mpeg4", "-q:v", "2"];
  return [...even, "-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p"];
}

/**
 * Encodes `dir/%06d.png` (from 000001) at `rate` frames per second into
 * the video file `out`, through a temporary file beside it renamed at the
 * end: a failed or interrupted encode leaves no `out`.
 */
export async function encodeFrames(
  ffmpeg: string,
  dir: string,
  rate: string,
  out: string,
): Promise<void> {
  const slash = out.lastIndexOf("/");
  const ext = out.slice(out.lastIndexOf("."));
  const tmp = `${out.slice(0, slash + 1)}.stylize-${crypto.randomUUID().slice(0, 8)}${ext}`;
  try {
    await runTool(ffmpeg, [
      "-nostdin",
      "-v",
      "error",
      "-y",
      "-framerate",
      rate,
      "-i",
      join(dir, "%06d.png"),
      ...encoderArgs(out),
      tmp,
    ], out);
    await Deno.rename(tmp, out);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    if (e instanceof UserError) throw e;
    throw new UserError(`${out}: cannot write file (${(e as Error).message.split("\n")[0]})`);
  }
}
