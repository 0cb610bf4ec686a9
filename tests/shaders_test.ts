import assert from "node:assert/strict";
import { UNIFORM_ARRAY_BYTES } from "../src/engine/ops/context.ts";

const dir = new URL("../src/engine/shaders/", import.meta.url);
const sources: [string, string][] = [];
for (const e of Deno.readDirSync(dir)) {
  if (e.name.endsWith(".wgsl")) {
    sources.push([e.name, Deno.readTextFileSync(new URL(e.name, dir))]);
  }
}

// lavapipe specialises a kernel on the uniforms at constant offsets that
// steer its loops and branches, recompiling at launches and unrolling loops
// (one 3×3 gradient launch 10× slower, depending on which layer ran it
// first; bench/NOTES.md row 41). The kernels therefore read their Params at
// an index the driver cannot fold. The only other uniforms are weights,
// arrays of UNIFORM_ARRAY_BYTES (the binding size the ops bind) read at
// computed indices, which steer nothing.
Deno.test("every kernel reads its uniform parameters at an index the driver cannot fold", () => {
  let kernels = 0;
  const weights = `array<vec4<f32>,${UNIFORM_ARRAY_BYTES / 16}>`;
  for (const [name, src] of sources) {
    const decls = [...src.matchAll(/var<uniform>\s*(\w+)\s*:\s*([^;]+);/g)]
      .filter(([, , type]) => type.replace(/\s+/g, "") !== weights);
    for (const [, , type] of decls) {
      assert.equal(type.replace(/\s+/g, ""), "array<Params,2>", `${name}: uniform ${type}`);
    }
    if (decls.length === 0) continue;
    const param = src.match(/var<private>\s*(\w+)\s*:\s*Params;/)?.[1];
    assert.ok(param, `${name}: no private copy of the parameters`);
    for (const m of src.matchAll(/@compute[^\n]*\nfn (\w+)\(([^{]*)\{\n([^\n]*)/g)) {
      const [, entry, args, first] = m;
      const nwg = args.match(/@builtin\(num_workgroups\)\s*(\w+)/)?.[1];
      assert.ok(nwg, `${name}:${entry} lacks num_workgroups`);
      assert.equal(first.trim(), `${param} = params[${nwg}.x >> 31u];`, `${name}:${entry}`);
      kernels++;
    }
  }
  assert.ok(kernels >= 10, `only ${kernels} entry points checked`);
});
