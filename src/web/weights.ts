/**
 * The weights in the page: from Cache Storage when a verified copy is there,
 * else fetched from the page's own origin (`deno task web` serves the CLI's
 * file) or, on a static host without it, from the pinned URL; size and
 * sha256 checked with `crypto.subtle` before use, and only a verified copy is
 * kept in the cache.
 * @module
 */
import { UserError } from "../engine/errors.ts";
import {
  type ConvWeights,
  verifyAndParseWeights,
  WEIGHTS_FILE_NAME,
  WEIGHTS_URL,
} from "../engine/model/weights.ts";

/** Cache Storage name of the page's weights. */
const WEIGHTS_CACHE = "stylize-weights-v1";

/** Where the page looks for the weights, in order: beside the page, then the pinned URL. */
function weightsSources(base: string): string[] {
  return [new URL(WEIGHTS_FILE_NAME, base).href, WEIGHTS_URL];
}

/** Cache Storage, where the page may use it (secure contexts only). */
function weightsCache(): Promise<Cache | null> {
  if (!("caches" in globalThis)) return Promise.resolve(null);
  return caches.open(WEIGHTS_CACHE).catch(() => null);
}

/** The cached copy, verified; a copy that fails verification is removed. */
async function fromCache(
  cache: Cache,
  key: string,
): Promise<Map<string, ConvWeights> | null> {
  const hit = await cache.match(key);
  if (!hit) return null;
  try {
    return await verifyAndParseWeights(
      new Uint8Array(await hit.arrayBuffer()),
      "(cached copy)",
    );
  } catch {
    await cache.delete(key);
    return null;
  }
}

/** The bytes at `url`, or null when it is not there (404, network or CORS failure). */
async function download(url: string): Promise<Uint8Array | null> {
  try {
    const res = await fetch(url, { cache: "no-store" });
    if (!res.ok) return null;
    return new Uint8Array(await res.arrayBuffer());
  } catch {
    return null;
  }
}

/**
 * Loads, verifies and parses the weights (see the module's comment).
 * @param base the page's URL (the origin's copy is `sqz_notop.mat` beside it)
 * @param onProgress receives one-line progress messages
 * @throws {UserError} when no source has them, or a downloaded copy fails verification
 */
export async function loadPageWeights(
  base: string,
  onProgress: (message: string) => void = () => {},
): Promise<Map<string, ConvWeights>> {
  const cache = await weightsCache();
  const key = WEIGHTS_URL;
  const cached = cache && await fromCache(cache, key);
  if (cached) return cached;
  for (const url of weightsSources(base)) {
    onProgress(`downloading the weights from ${url}`);
    const bytes = await download(url);
    if (!bytes) continue;
    const weights = await verifyAndParseWeights(bytes, url);
    await cache?.put(key, new Response(bytes as Uint8Array<ArrayBuffer>)).catch(
      () => {},
    );
    return weights;
  }
  throw new UserError(
    `cannot download the weights (${weightsSources(base).join(", then ")}); ` +
      "serve the page with `deno task web`, or put sqz_notop.mat beside it",
  );
}
