/**
 * The page's web server: the built files of one folder and the weights file,
 * nothing else. A path that leaves the folder — `..` segments, encoded dots or
 * slashes, a symlink pointing out — is a 404, like any path that is not a
 * regular file in it.
 * @module
 */
import { join, sep } from "node:path";
import { WEIGHTS_FILE_NAME } from "../../src/engine/model/weights.ts";

/** Content types by file extension. */
const TYPES: Record<string, string> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
  map: "application/json",
  json: "application/json",
  png: "image/png",
  jpg: "image/jpeg",
  mat: "application/octet-stream",
};

/** What {@link pageHandler} serves. */
export interface ServeOptions {
  /** The folder of the built page (dist/web/). */
  root: string;
  /** The weights file served as /sqz_notop.mat, if any. */
  weightsPath?: string;
  /** Called with each request's path and status (e.g. for a log, or counting in tests). */
  onRequest?: (path: string, status: number) => void;
}

/**
 * The folder-relative path of a URL path, or null when it is not a plain
 * path inside the folder: undecodable, with a NUL or backslash, or with an
 * empty, `.` or `..` segment once decoded. `/` is `index.html`.
 */
export function safeRelativePath(urlPath: string): string | null {
  let path: string;
  try {
    path = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (!path.startsWith("/") || /[\0\\]/.test(path)) return null;
  if (path === "/") return "index.html";
  const parts = path.slice(1).split("/");
  if (parts.some((p) => p === "" || p === "." || p === "..")) return null;
  return parts.join("/");
}

/** The real path of `path` when it is a regular file inside `realRoot`, else null. */
async function fileInside(
  realRoot: string,
  path: string,
): Promise<string | null> {
  try {
    const real = await Deno.realPath(path);
    if (!real.startsWith(realRoot + sep)) return null;
    return (await Deno.stat(real)).isFile ? real : null;
  } catch {
    return null;
  }
}

function notFound(): Response {
  return new Response("404 not found\n", {
    status: 404,
    headers: { "content-type": "text/plain" },
  });
}

/** The response for one file (GET or HEAD). */
async function fileResponse(path: string, head: boolean): Promise<Response> {
  const ext = path.slice(path.lastIndexOf(".") + 1);
  const headers = {
    "content-type": TYPES[ext] ?? "application/octet-stream",
    "cache-control": "no-cache",
    "x-content-type-options": "nosniff",
  };
  if (head) {
    const { size } = await Deno.stat(path);
    return new Response(null, {
      headers: { ...headers, "content-length": String(size) },
    });
  }
  const file = await Deno.open(path, { read: true });
  return new Response(file.readable, { headers });
}

/** A request handler serving `o.root`'s files and the weights. */
export function pageHandler(
  o: ServeOptions,
): (req: Request) => Promise<Response> {
  const rootPromise = Deno.realPath(o.root);
  return async (req) => {
    const urlPath = new URL(req.url).pathname;
    const res = await answer(req, urlPath, await rootPromise, o);
    o.onRequest?.(urlPath, res.status);
    return res;
  };
}

async function answer(
  req: Request,
  urlPath: string,
  realRoot: string,
  o: ServeOptions,
): Promise<Response> {
  if (req.method !== "GET" && req.method !== "HEAD") {
    return new Response("405 method not allowed\n", {
      status: 405,
      headers: { allow: "GET, HEAD" },
    });
  }
  const rel = safeRelativePath(urlPath);
  if (rel === null) return notFound();
  if (rel === WEIGHTS_FILE_NAME && o.weightsPath) {
    return await fileResponse(o.weightsPath, req.method === "HEAD");
  }
  const file = await fileInside(realRoot, join(realRoot, rel));
  return file ? await fileResponse(file, req.method === "HEAD") : notFound();
}
