/**
 * The folders show the boundary: src/engine is platform-neutral (no Deno API,
 * no DOM global, no Node, npm, JSR or URL import, nothing from an edge), and
 * the two edges, src/deno and src/web, never import each other.
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

/** The code without its string literals too (a message may name `window`). */
function bareCode(text: string): string {
  return code(text).replace(/`(?:[^`\\]|\\.)*`|"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""');
}

/**
 * The browser's own globals, which only the page (src/web) may use: the DOM,
 * storage, the page's timers. `navigator` stays allowed: `navigator.gpu` is
 * WebGPU's entry point in Deno and in browsers alike.
 */
const DOM_GLOBALS =
  /(?<![.\w$])(document|window|localStorage|sessionStorage|location|alert|requestAnimationFrame|HTML\w*Element|OffscreenCanvas|createImageBitmap|ImageData|indexedDB|caches|XMLHttpRequest)\b(?!\s*:)/;

/** What makes a source unfit for src/engine: each a line naming the file and the offence. */
function engineViolations(name: string, text: string): string[] {
  const out: string[] = [];
  if (/\bDeno\s*\./.test(code(text))) out.push(`${name} uses Deno`);
  const dom = DOM_GLOBALS.exec(bareCode(text));
  if (dom) out.push(`${name} uses the browser's ${dom[1]}`);
  for (const spec of imports(text)) {
    if (/^(node|npm|jsr|https?):/.test(spec) || /\/(deno|web)\//.test(spec)) {
      out.push(`${name} imports ${spec}`);
    }
  }
  return out;
}

Deno.test("src/engine uses no Deno API, no DOM global, no node:, npm:, jsr: or URL import, and nothing from an edge", () => {
  const files = sources(join(SRC, "engine"));
  assert.ok(files.length > 20, `${files.length} engine files`);
  const found = files.flatMap((f) => engineViolations(relative(SRC, f.path), f.text));
  assert.deepEqual(found, []);
});

Deno.test("the engine's boundary check refuses each kind of offence, and passes what the engine may do", () => {
  const offences = [
    `import { join } from "node:path";`,
    `import x from "npm:imagescript@1.3.1";`,
    `import { assert } from "jsr:@std/assert";`,
    `export { parse } from "https://deno.land/std/flags/mod.ts";`,
    `const m = await import("http://example.com/m.ts");`,
    `import { readImage } from "../../deno/image/mod.ts";`,
    `import { page } from "../web/page.ts";`,
    `const w = Deno.env.get("X");`,
    `document.title = "x";`,
    `const c = document.createElement("canvas");`,
    `window.addEventListener("load", f);`,
    `localStorage.setItem("k", "v");`,
    `requestAnimationFrame(draw);`,
    `const el = x as HTMLCanvasElement;`,
    `const bmp = await createImageBitmap(blob);`,
    `const c = new OffscreenCanvas(1, 1);`,
  ];
  for (const o of offences) assert.equal(engineViolations("x.ts", o).length, 1, o);
  const allowed = [
    `const adapter = await navigator.gpu.requestAdapter();`,
    `// the page's document and window are the edge's`,
    `throw new UserError("open the page in a window");`,
    `const r = { location: 1, document: "a" }; r.window = 2;`,
    `import { resize } from "../image/resize.ts";`,
  ];
  for (const a of allowed) assert.deepEqual(engineViolations("x.ts", a), [], a);
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
