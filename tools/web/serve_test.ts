import assert from "node:assert/strict";
import { join } from "node:path";
import { pageHandler, safeRelativePath } from "./serve.ts";

/** A served folder with a page, a subfolder, and a secret beside it that must never be served. */
async function fixture() {
  const base = await Deno.makeTempDir({ prefix: "stylize-serve-" });
  const root = join(base, "web");
  await Deno.mkdir(join(root, "sub"), { recursive: true });
  await Deno.writeTextFile(join(root, "index.html"), "<p>page</p>");
  await Deno.writeTextFile(join(root, "main.js"), "console.log(1)");
  await Deno.writeTextFile(join(root, "sub", "a.css"), "p{}");
  await Deno.writeTextFile(join(base, "secret.txt"), "SECRET");
  await Deno.writeTextFile(join(base, "weights.mat"), "WEIGHTS");
  await Deno.symlink(join(base, "secret.txt"), join(root, "link-out.txt"));
  await Deno.symlink(base, join(root, "dir-out"));
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    pageHandler({ root, weightsPath: join(base, "weights.mat") }),
  );
  return {
    port: server.addr.port,
    async close() {
      await server.shutdown();
      await Deno.remove(base, { recursive: true });
    },
  };
}

/** Sends `target` as the request line's path as it is (no client-side normalisation). */
async function rawGet(
  port: number,
  target: string,
): Promise<{ status: number; body: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const req = `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`;
  await conn.write(new TextEncoder().encode(req));
  const text = new TextDecoder().decode(
    await new Response(conn.readable).arrayBuffer(),
  );
  return {
    status: Number(text.split(" ")[1]),
    body: text.slice(text.indexOf("\r\n\r\n") + 4),
  };
}

Deno.test("serve: the page's files and the weights are served", async () => {
  const f = await fixture();
  try {
    for (
      const [path, body] of [
        ["/", "<p>page</p>"],
        ["/index.html", "<p>page</p>"],
        ["/main.js", "console.log(1)"],
        ["/sub/a.css", "p{}"],
        ["/sqz_notop.mat", "WEIGHTS"],
      ]
    ) {
      const r = await rawGet(f.port, path);
      assert.equal(r.status, 200, path);
      assert.ok(r.body.includes(body), `${path}: ${r.body}`);
    }
  } finally {
    await f.close();
  }
});

Deno.test("serve: paths out of the folder (dots, encoded dots and slashes, symlinks) are 404", async () => {
  const f = await fixture();
  try {
    for (
      const path of [
        "/../secret.txt",
        "/sub/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e%2fsecret.txt",
        "/sub%2f..%2f..%2fsecret.txt",
        "/..%5csecret.txt",
        "/link-out.txt",
        "/dir-out/secret.txt",
        "/secret.txt%00.html",
        "/%zz",
        "/sub/",
        "/sub",
        "//secret.txt",
        "/nothing.js",
        "/weights.mat",
      ]
    ) {
      const r = await rawGet(f.port, path);
      assert.equal(r.status, 404, `${path} gave ${r.status}`);
      assert.ok(
        !r.body.includes("SECRET") && !r.body.includes("WEIGHTS"),
        path,
      );
    }
  } finally {
    await f.close();
  }
});

Deno.test("serve: a method other than GET or HEAD is refused", async () => {
  const f = await fixture();
  try {
    const res = await fetch(`http://127.0.0.1:${f.port}/index.html`, {
      method: "POST",
    });
    await res.body?.cancel();
    assert.equal(res.status, 405);
  } finally {
    await f.close();
  }
});

Deno.test("serve: safeRelativePath keeps plain paths and refuses the others", () => {
  assert.equal(safeRelativePath("/"), "index.html");
  assert.equal(safeRelativePath("/sub/a%20b.css"), "sub/a b.css");
  for (
    const p of [
      "/..",
      "/a/../b",
      "/a/./b",
      "/a//b",
      "/a/",
      "/%2e%2e",
      "/a%5cb",
      "/%00",
      "/%e0",
    ]
  ) {
    assert.equal(safeRelativePath(p), null, p);
  }
});
