import assert from "node:assert/strict";
import { evalExpr, expandTemplate } from "../src/engine/gpu/template.ts";

Deno.test("template: integer expressions follow precedence and truncating division", () => {
  assert.equal(evalExpr("(TN-1)*S+3", { TN: 8, S: 2 }), 17);
  assert.equal(evalExpr("7/2 + 7%2 - -1", {}), 5);
  assert.throws(() => evalExpr("X+1", {}), /unknown parameter X/);
  assert.throws(() => evalExpr("1 $ 2", {}), /bad expression/);
});

Deno.test("template: nested //#for blocks unroll with substituted expressions", () => {
  const src = [
    "a",
    "//#for i in 0..M",
    "//#for j in 1..N+1",
    "  v${i}_${j} = ${i*10+j};",
    "//#end",
    "//#end",
    "b ${M}",
  ].join("\n");
  assert.equal(
    expandTemplate(src, { M: 2, N: 2 }),
    ["a", "  v0_1 = 1;", "  v0_2 = 2;", "  v1_1 = 11;", "  v1_2 = 12;", "b 2"].join("\n"),
  );
  assert.throws(() => expandTemplate("//#for i in 0..2\nx", {}), /without \/\/#end/);
  assert.equal(
    expandTemplate("//#if A-1\nno\n//#end\n//#if A\nyes ${A}\n//#end", { A: 1 }),
    "yes 1",
  );
  assert.throws(() => expandTemplate("x\n//#end", {}), /without \/\/#for/);
});
