/**
 * `--batch IN_DIR STYLE [STYLE...] -o OUT_DIR` from the command line: every
 * PNG or JPEG in IN_DIR (by extension, in name order) stylised with the
 * same settings into `OUT_DIR/<name>.png`, on one engine with the style
 * targets made once (src/engine/batch.ts). An image that fails is reported
 * in one line and the batch goes on (exit 2 at the end); outputs that exist
 * are skipped unless `--overwrite`, so an interrupted batch resumes; an
 * image is written only when its run finished (never a stopped run's).
 * Prints only through `log` and `fail`; never exits.
 * @module
 */
import { basename, extname, join, resolve } from "node:path";
import { UserError } from "../engine/errors.ts";
import { stylizeBatch } from "../engine/batch.ts";
import { readImage, writeImage } from "./image/mod.ts";
import {
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

/** Input extensions a batch or a folder of frames takes. */
const IMAGE_EXTENSIONS = [".png", ".jpg", ".jpeg"];

/** Natural name order: "frame2" before "frame10". */
export function byName(a: string, b: string): number {
  return a.localeCompare(b, "en", { numeric: true }) || (a < b ? -1 : a > b ? 1 : 0);
}

/**
 * The PNG and JPEG files of a folder (by extension, any case; hidden files
 * and subfolders left out), in {@link byName} order.
 * @throws {UserError} when `dir` is not a readable folder
 */
export function listImages(dir: string, flag: string): string[] {
  let entries: Deno.DirEntry[];
  try {
    if (!Deno.statSync(dir).isDirectory) throw new UserError(`${flag} ${dir}: not a folder`);
    entries = [...Deno.readDirSync(dir)];
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${flag} ${dir}: cannot read (${(e as Error).message.split("\n")[0]})`);
  }
  return entries
    .filter((e) =>
      !e.isDirectory && !e.name.startsWith(".") &&
      IMAGE_EXTENSIONS.includes(extname(e.name).toLowerCase())
    )
    .map((e) => e.name)
    .sort(byName);
}

/** A file's name without its extension. */
export function stem(name: string): string {
  return basename(name, extname(name));
}

/**
 * Makes the output folder (with its parents) and proves it writable, and
 * refuses it where it is the input folder. Returns a function that removes
 * the folder again if this made it and it is still empty (a run that wrote
 * nothing leaves nothing).
 * @throws {UserError} one line naming the folder
 */
export async function prepareOutputDir(out: string, input: string): Promise<() => Promise<void>> {
  const made = !exists(out);
  const undo = async () => {
    if (made) await Deno.remove(out).catch(() => {});
  };
  try {
    await Deno.mkdir(out, { recursive: true });
  } catch (e) {
    throw new UserError(`${out}: cannot make the output folder (${firstLine(e)})`);
  }
  try {
    if (!Deno.statSync(out).isDirectory) throw new UserError(`${out}: not a folder`);
    if (Deno.realPathSync(out) === Deno.realPathSync(input)) {
      throw new UserError(`${out}: the output folder is the input folder; choose another -o`);
    }
    try {
      await Deno.remove(await Deno.makeTempFile({ dir: out, prefix: ".stylize-probe-" }));
    } catch (e) {
      throw new UserError(`${out}: output folder is not writable (${firstLine(e)})`);
    }
  } catch (e) {
    await undo();
    throw e;
  }
  return undo;
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0];
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs a batch as the CLI does; returns the exit code (0, 2 when an image
 * failed or the batch could not go on, 130 when interrupted).
 * @param fail prints one error line (even with --quiet), with the flags of
 *   the settings `e` names
 */
export async function runBatch(
  o: RunOptions,
  fail: (line: string, e?: UserError) => void,
  signal?: AbortSignal,
): Promise<number> {
  const log = (s: string) => o.quiet || console.error(s);
  const files = listImages(o.contents, "--batch");
  if (files.length === 0) throw new UserError(`--batch ${o.contents}: no PNG or JPEG files in it`);
  const names = new Map<string, string>();
  for (const f of files) {
    const other = names.get(stem(f));
    if (other) {
      throw new UserError(
        `--batch: ${other} and ${f} would both be written as ${stem(f)}.png; rename one`,
      );
    }
    names.set(stem(f), f);
  }
  const undo = await prepareOutputDir(o.output, o.contents);
  const outOf = (f: string) => join(o.output, `${stem(f)}.png`);
  const todo = o.overwrite ? files : files.filter((f) => !exists(outOf(f)));
  if (todo.length < files.length) {
    log(
      `${files.length - todo.length} of ${files.length} images already in ${o.output}: ` +
        "skipped (--overwrite to redo them)",
    );
  }
  if (todo.length === 0) return 0;
  try {
    return await batch(o, todo, outOf, fail, signal);
  } finally {
    await undo();
  }
}

/** Stylises the images `todo` (names in the input folder) into `outOf(name)`; the exit code. */
async function batch(
  o: RunOptions,
  todo: string[],
  outOf: (name: string) => string,
  fail: (line: string, e?: UserError) => void,
  signal?: AbortSignal,
): Promise<number> {
  const log = (s: string) => o.quiet || console.error(s);
  const inputs = await readStyles(o);
  const holder = await EngineHolder.open(o, log);
  const traces: Record<string, unknown>[] = [];
  const t0 = performance.now();
  try {
    const base = scheduleBase(o, inputs, holder, log, signal);
    const tiles: number[] = [];
    let started = 0;
    const result = await stylizeBatch(holder.engine, {
      ...base,
      images: {
        count: todo.length,
        name: (k) => todo[k],
        read: (k) => readImage(join(o.contents, todo[k])),
      },
      onScale: scaleLogger(holder, log, tiles),
      onImageStart: (k, name, img) => {
        started = performance.now();
        tiles.length = 0;
        log(`image ${k + 1}/${todo.length}: ${name} (${img.width}×${img.height})`);
      },
      onImage: async (_k, name, x, r, content) => {
        holder.engine = r.engine;
        const img = shown(x, o, content);
        await writeImage(outOf(name), img);
        const secs = (performance.now() - started) / 1000;
        log(
          `wrote ${outOf(name)} (${img.width}×${img.height}) in ${secs.toFixed(1)}s, ` +
            runSummary(r),
        );
        if (o.trace) {
          traces.push(
            traceOf(o, holder.engine, r, secs, [...tiles], holder.priorPeak, outOf(name)),
          );
        }
      },
      onFailure: (_k, name, e) => {
        const path = join(o.contents, name);
        const msg = e.message.startsWith(`${path}: `)
          ? e.message.slice(path.length + 2)
          : e.message;
        fail(`${path}: ${msg}; skipped`, e);
      },
    });
    holder.engine = result.engine;
    if (o.trace) await writeJson(o.trace, { mode: "batch", images: traces });
    const secs = (performance.now() - t0) / 1000;
    const failed = result.failures.length;
    log(
      `batch: ${result.done} of ${todo.length} images written to ${resolve(o.output)} in ` +
        `${secs.toFixed(1)}s` + (failed ? `, ${failed} failed` : ""),
    );
    if (result.failed) {
      fail(`${result.failed}; the batch stopped (run it again to go on)`);
      return 2;
    }
    if (result.stopped) {
      log("interrupted: the image in progress was not written (run again to go on)");
      return 130;
    }
    if (failed) {
      fail(
        `${failed} of ${todo.length} images failed: ${
          result.failures.map((f) => f.name).join(", ")
        }`,
      );
      return 2;
    }
    return 0;
  } finally {
    holder.dispose();
  }
}
