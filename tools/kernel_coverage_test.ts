/**
 * The last test of tools/swiftshader.ts's run: reads the log tools/kernel_log.ts
 * wrote while the tests before it ran, and checks that they ran on the adapter
 * asked for and built every entry point of every kernel under
 * src/engine/shaders/. Outside that run (no `$STYLIZE_KERNEL_LOG`) it fails.
 * @module
 */
import assert from "node:assert/strict";

const SHADERS = new URL("../src/engine/shaders/", import.meta.url);

/** Every `@compute` entry point of the WGSL files under src/engine/shaders/, as `file:entry`. */
function entryPoints(): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(SHADERS)) {
    if (!e.name.endsWith(".wgsl")) continue;
    const src = Deno.readTextFileSync(new URL(e.name, SHADERS));
    for (const m of src.matchAll(/@compute[^\n]*\s+fn\s+(\w+)/g)) out.push(`${e.name}:${m[1]}`);
  }
  return out.sort();
}

Deno.test("the tests ran on the adapter asked for and built every entry point of every kernel", () => {
  const path = Deno.env.get("STYLIZE_KERNEL_LOG");
  assert.ok(path, "no $STYLIZE_KERNEL_LOG: run through tools/swiftshader.ts");
  const lines = Deno.readTextFileSync(path).split("\n").filter((l) => l);
  const adapters = new Set(lines.filter((l) => l.startsWith("adapter ")).map((l) => l.slice(8)));
  const want = new RegExp(Deno.env.get("STYLIZE_KERNEL_ADAPTER") ?? ".");
  assert.ok(adapters.size > 0, "no adapter was opened");
  for (const a of adapters) assert.match(a, want, `the tests opened ${[...adapters].join(", ")}`);
  // Labels are `<file>.wgsl[<template parameters>]:<entry>` or `<file>.wgsl:<entry>`.
  const built = new Set(
    lines.filter((l) => l.startsWith("pipeline ")).map((l) => l.slice(9).replace(/\[[^\]]*\]/, "")),
  );
  const entries = entryPoints();
  assert.ok(entries.length >= 13, `only ${entries.length} entry points found`);
  const missed = entries.filter((e) => !built.has(e));
  assert.deepEqual(missed, [], `never built on ${[...adapters].join(", ")}`);
});
