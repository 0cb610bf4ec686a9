import assert from "node:assert/strict";
import { join } from "node:path";
import { repoPath, weightsPath } from "../../tests/data.ts";
import { DIST_WEB } from "./build.ts";

const WEB_TS = repoPath("tools", "web", "web.ts");
const CONFIG = repoPath("tools", "web", "deno.json");
const WEIGHTS = await weightsPath();

/** `deno task web ARGS` as a child process. */
function web(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--config", CONFIG, WEB_TS, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

Deno.test("web --build writes the page into dist/web/ with the shaders bundled in its worker, and exits", async () => {
  const out = await web(["--build"]).output();
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  for (const f of ["index.html", "style.css", "main.js", "worker.js", "sw.js"]) {
    assert.ok((await Deno.stat(join(DIST_WEB, f))).isFile, f);
  }
  const worker = await Deno.readTextFile(join(DIST_WEB, "worker.js"));
  assert.match(worker, /@compute @workgroup_size/);
  for (const f of ["main.js", "worker.js", "sw.js"]) {
    assert.doesNotMatch(await Deno.readTextFile(join(DIST_WEB, f)), /Deno\./, f);
  }
  // The service worker keeps exactly the page's files, under a version of their bytes.
  const sw = await Deno.readTextFile(join(DIST_WEB, "sw.js"));
  assert.match(sw, /\["\.\/", "index\.html", "style\.css", "main\.js", "worker\.js"\]/);
  assert.match(sw, /\$\{"[0-9a-f]{16}"\}/);
});

Deno.test("web serves the page and the weights on 127.0.0.1 and prints the URL", async () => {
  const child = web(["--port", "0", "--weights", WEIGHTS]);
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  try {
    const { value } = await lines.read();
    const url = /http:\/\/127\.0\.0\.1:\d+\//.exec(value ?? "")?.[0];
    assert.ok(url, `no URL in ${value}`);
    const page = await fetch(url);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /id="status"/);
    const weights = await fetch(new URL("sqz_notop.mat", url));
    assert.equal((await weights.arrayBuffer()).byteLength, (await Deno.stat(WEIGHTS)).size);
    const other = await fetch(new URL("deno.json", url));
    await other.body?.cancel();
    assert.equal(other.status, 404);
  } finally {
    child.kill();
    await lines.cancel();
    await child.stderr.cancel();
    await child.status;
  }
});

Deno.test("web with a bad flag says so in one line and exits 2", async () => {
  const out = await web(["--port", "http"]).output();
  assert.equal(out.code, 2);
  assert.match(
    new TextDecoder().decode(out.stderr),
    /^web: --port: "http" is not a port number\n$/,
  );
});
