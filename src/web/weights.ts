/**
 * The weights in the page: from Cache Storage when a verified copy is there,
 * else fetched from the page's own origin (`deno task web` serves the CLI's
 * file) or, on a static host without it (a 404, or its catch-all page in its
 * place), from the pinned URL; size and sha256 checked with `crypto.subtle`
 * before use, and only a verified copy is kept in the cache.
 * @module
 */
import { UserError } from "../engine/errors.ts";
import {
  type ConvWeights,
  verifyAndParseWeights,
  WEIGHTS_FILE_NAME,
  WEIGHTS_SIZE,
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

/** The bytes at `url`, or why there are none (404, network or CORS failure). */
async function download(
  get: typeof fetch,
  url: string,
): Promise<Uint8Array | string> {
  try {
    const res = await get(url, { cache: "no-store" });
    if (!res.ok) {
      await res.body?.cancel();
      return `${url}: HTTP ${res.status}`;
    }
    return new Uint8Array(await res.arrayBuffer());
  } catch (e) {
    return `${url}: ${(e as Error).message || "network error"}`;
  }
}

/** The weights in `bytes`, or why they are not the verified weights. */
async function verified(
  bytes: Uint8Array,
  url: string,
): Promise<Map<string, ConvWeights> | string> {
  // A static host's catch-all page answers 200 with HTML: not the weights.
  if (bytes.length !== WEIGHTS_SIZE) {
    return `${url}: ${bytes.length} bytes, not the ${WEIGHTS_SIZE} of the weights`;
  }
  try {
    return await verifyAndParseWeights(bytes, url);
  } catch (e) {
    if (!(e instanceof UserError)) throw e;
    return `${url}: fails the sha256 check`;
  }
}

/** Where {@link loadPageWeights} gets the weights (tests replace them). */
export interface WeightsAccess {
  /** The fetch to use (default the global one). */
  fetch?: typeof fetch;
  /** The Cache Storage cache to use (default the page's; null: none). */
  cache?: Cache | null;
}

/**
 * Loads, verifies and parses the weights (see the module's comment): a
 * source that is not there, or answers something that is not the weights
 * (size and sha256), is passed over for the next.
 * @param base the page's URL (the origin's copy is `sqz_notop.mat` beside it)
 * @param onProgress receives one-line progress messages
 * @param access the fetch and cache to use (default the page's)
 * @throws {UserError} when no source has them, naming what each answered
 */
export async function loadPageWeights(
  base: string,
  onProgress: (message: string) => void = () => {},
  access: WeightsAccess = {},
): Promise<Map<string, ConvWeights>> {
  const cache = access.cache !== undefined ? access.cache : await weightsCache();
  const get = access.fetch ?? fetch;
  const key = WEIGHTS_URL;
  const cached = cache && await fromCache(cache, key);
  if (cached) return cached;
  const failures: string[] = [];
  for (const url of weightsSources(base)) {
    onProgress(`downloading the weights from ${url}`);
    const bytes = await download(get, url);
    const weights = typeof bytes === "string" ? bytes : await verified(bytes, url);
    if (typeof weights === "string") {
      failures.push(weights);
      continue;
    }
    await cache?.put(key, new Response(bytes as Uint8Array<ArrayBuffer>)).catch(() => {});
    return weights;
  }
  throw new UserError(
    `cannot download the weights (${failures.join("; ")}); ` +
      "serve the page with `deno task web`, or put sqz_notop.mat beside it",
  );
}
