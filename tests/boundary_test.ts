/**
 * The folders show the boundary: src/engine is platform-neutral (no Deno API,
 * no Node module, nothing from an edge), and the two edges, src/deno and
 * src/web, never import each other.
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const SRC = fileURLToPath(new URL("../src/", import.meta.url));

/** Every .ts file under `dir`, with its text. */
function sources(dir: string): { path: string; text: string }[] {
  const out: { path: string; text: string }[] = [];
  for (const e of Deno.readDirSync(dir)) {
    const p = join(dir, e.name);
    if (e.isDirectory) out.push(...sources(p));
    else if (e.name.endsWith(".ts")) out.push({ path: p, text: Deno.readTextFileSync(p) });
  }
  return out;
}

/** The module specifiers a source imports (static and dynamic). */
function imports(text: string): string[] {
  return [...text.matchAll(/(?:from|import)\s*\(?\s*["']([^"']+)["']/g)].map((m) => m[1]);
}

/** The code of a source without its comments (a comment may name `Deno.env`). */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
}

Deno.test("src/engine uses no Deno API, no node: module and nothing from an edge", () => {
  const files = sources(join(SRC, "engine"));
  assert.ok(files.length > 20, `${files.length} engine files`);
  for (const f of files) {
    const name = relative(SRC, f.path);
    assert.doesNotMatch(code(f.text), /\bDeno\s*\./, `${name} uses Deno`);
    for (const spec of imports(f.text)) {
      assert.ok(!spec.startsWith("node:"), `${name} imports ${spec}`);
      assert.ok(
        !/\/(deno|web)\//.test(spec) && !spec.startsWith("npm:"),
        `${name} imports ${spec}`,
      );
    }
  }
});

Deno.test("the edges never import each other", () => {
  for (const [edge, other] of [["deno", "web"], ["web", "deno"]]) {
    for (const f of sources(join(SRC, edge))) {
      for (const spec of imports(f.text)) {
        assert.ok(!spec.includes(`/${other}/`), `${relative(SRC, f.path)} imports ${spec}`);
      }
    }
  }
});
