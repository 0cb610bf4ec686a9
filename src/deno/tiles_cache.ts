/**
 * Tuned tile tables cached per adapter (written by `deno task tune`, read by
 * every later run on the same adapter): one JSON file per adapter in the
 * stylize cache directory, `tiles/<slug>-<hash>.json`.
 * @module
 */
import { join } from "node:path";
import { DEFAULT_TILES, type TileTable } from "../engine/ops/context.ts";
import { sha256Hex } from "../engine/model/weights.ts";
import { cacheDir } from "./cache_dir.ts";

/** Format version of the cached file; files of other versions are ignored. */
export const TILES_FILE_VERSION = 4;

/** What a tuned-tiles file holds. */
export interface TunedTilesFile {
  version: number;
  /** The adapter's key ({@link Gpu.adapterKey}) and name. */
  adapterKey: string;
  adapter: string;
  /** Image size the launches were timed at. */
  size: [number, number];
  /** ISO date of the tuning. */
  date: string;
  /** The kernel families whose tuned tile beat the default (the others keep it). */
  tiles: Partial<TileTable>;
}

/**
 * Path of the tuned-tiles file of the adapter `adapterKey` in the stylize cache
 * directory (see {@link cacheDir}), or undefined when no cache
 * directory is known.
 */
export async function tunedTilesPath(
  adapterKey: string,
  env?: (name: string) => string | undefined,
): Promise<string | undefined> {
  const dir = cacheDir(env);
  if (!dir) return undefined;
  const slug = adapterKey.split("|").pop()!.toLowerCase().replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "").slice(0, 40) || "adapter";
  const hash = (await sha256Hex(new TextEncoder().encode(adapterKey))).slice(0, 12);
  return join(dir, "tiles", `${slug}-${hash}.json`);
}

/** Whether `t` has the numeric fields of the default entry `d`, all positive integers. */
function sameShape(t: unknown, d: Record<string, number>): boolean {
  if (typeof t !== "object" || t === null) return false;
  const keys = Object.keys(d);
  const r = t as Record<string, unknown>;
  return Object.keys(r).length === keys.length &&
    keys.every((k) => Number.isInteger(r[k]) && (r[k] as number) >= 0);
}

/**
 * Reads a tuned-tiles file for the adapter `adapterKey`. Returns the tiles,
 * or a reason why the file is not used (missing, another version or adapter,
 * malformed).
 */
export async function loadTunedTiles(
  path: string,
  adapterKey: string,
): Promise<{ tiles: Partial<TileTable> } | { reason: string }> {
  let file: TunedTilesFile;
  try {
    file = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return { reason: "no tuned tiles" };
    return { reason: `unreadable (${(e as Error).message.split("\n")[0]})` };
  }
  if (typeof file !== "object" || file === null || file.version !== TILES_FILE_VERSION) {
    return { reason: `not version ${TILES_FILE_VERSION}` };
  }
  if (file.adapterKey !== adapterKey) return { reason: "tuned for another adapter" };
  const tiles: Record<string, unknown> = {};
  const defaults = DEFAULT_TILES as unknown as Record<string, Record<string, number>>;
  for (const [family, t] of Object.entries(file.tiles ?? {})) {
    if (!(family in defaults) || !sameShape(t, defaults[family])) {
      return { reason: `malformed entry "${family}"` };
    }
    tiles[family] = t;
  }
  return { tiles: tiles as Partial<TileTable> };
}

/** Writes a tuned-tiles file (creating its directory), atomically. */
export async function saveTunedTiles(path: string, file: TunedTilesFile): Promise<void> {
  await Deno.mkdir(join(path, ".."), { recursive: true });
  const tmp = `${path}.${Date.now()}.tmp`;
  await Deno.writeTextFile(tmp, JSON.stringify(file, null, 2) + "\n");
  await Deno.rename(tmp, path);
}
