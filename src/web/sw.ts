/**
 * The page's service worker: on install it keeps the page's files (the
 * list and a version made by the build, tools/web/build.ts) in Cache
 * Storage, and answers them from there, so after one visit the page loads
 * with the network off; the weights are kept, verified, by the page's worker
 * (./weights.ts) in a cache of their own. A new build is a new version: its
 * files replace the old ones at the next visit.
 * @module
 */

export {};

/** The build's version (a hash of the page's files) and the files to keep, set by the build. */
declare const STYLIZE_SW_VERSION: string;
declare const STYLIZE_SW_FILES: string[];

/** The parts of the service worker's global scope used here. */
interface SwScope {
  registration: { scope: string };
  skipWaiting(): Promise<void>;
  clients: { claim(): Promise<void> };
  addEventListener(type: "install" | "activate", f: (e: ExtendableEvent) => void): void;
  addEventListener(type: "fetch", f: (e: FetchEvent) => void): void;
}
interface ExtendableEvent extends Event {
  waitUntil(p: Promise<unknown>): void;
}
interface FetchEvent extends ExtendableEvent {
  request: Request;
  respondWith(r: Promise<Response> | Response): void;
}

const sw = globalThis as unknown as SwScope;
const PREFIX = "stylize-page-";
const CACHE = `${PREFIX}${STYLIZE_SW_VERSION}`;

/** The absolute URLs of the kept files. */
function keptUrls(): Set<string> {
  return new Set(STYLIZE_SW_FILES.map((f) => new URL(f, sw.registration.scope).href));
}

/** Fetches every file of this version (past the HTTP cache) into its cache. */
async function keepFiles(): Promise<void> {
  const cache = await caches.open(CACHE);
  await cache.addAll([...keptUrls()].map((u) => new Request(u, { cache: "reload" })));
}

/** Removes the caches of other versions (never the weights'). */
async function dropOldVersions(): Promise<void> {
  for (const name of await caches.keys()) {
    if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
  }
}

/** A kept file from the cache, else from the network. */
async function answer(request: Request, url: string): Promise<Response> {
  const hit = await (await caches.open(CACHE)).match(url);
  return hit ?? fetch(request);
}

sw.addEventListener("install", (e) => e.waitUntil(keepFiles().then(() => sw.skipWaiting())));
sw.addEventListener("activate", (e) => {
  e.waitUntil(dropOldVersions().then(() => sw.clients.claim()));
});
sw.addEventListener("fetch", (e) => {
  if (e.request.method !== "GET") return;
  const url = new URL(e.request.url);
  url.search = "";
  url.hash = "";
  if (!keptUrls().has(url.href)) return;
  e.respondWith(answer(e.request, url.href));
});
