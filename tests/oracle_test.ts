/**
 * The project's goldens (tests/goldens/, made by tests/oracle/oracle.py) and
 * the shared reference's (../shared/reference/) cannot drift apart: the
 * oracle also records, in tests/goldens/crosscheck.json, its definitions
 * applied to the shared goldens' own inputs, and this file compares those
 * with the shared goldens wherever the shared data is present. The
 * cross-check is tied to the committed goldens by their sha256 (both come
 * from one run of the oracle). Without shared data the comparison cannot run:
 * it is then reported as ignored, with the reason in its name.
 */
import assert from "node:assert/strict";
import { golden, repoPath, sharedDir, sharedGolden } from "./data.ts";
import { readSafetensors } from "./helpers.ts";
import { sha256Hex } from "../src/engine/model/weights.ts";

interface Stats {
  n: number;
  sum: number;
  abs: number;
  l2: number;
  dot: number;
  values?: number[];
}

const CROSSCHECK: {
  goldens: Record<string, string>;
  entries: Record<string, Record<string, Stats>>;
} = JSON.parse(Deno.readTextFileSync(repoPath("tests", "goldens", "crosscheck.json")));

const GOLDENS = ["forward", "backward", "adam20", "avgpool", "masked"];

/** The statistics oracle.py's `stats` records, computed in float64 from float32 data. */
function stats(data: Float32Array): Stats {
  let [sum, abs, sq, dot] = [0, 0, 0, 0];
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    sum += v;
    abs += Math.abs(v);
    sq += v * v;
    dot += v * (((i * 7919) % 1009) / 1009 - 0.5);
  }
  const s: Stats = { n: data.length, sum, abs, l2: Math.sqrt(sq), dot };
  if (data.length <= 64) s.values = [...data];
  return s;
}

/** Where `got` (the shared golden's) and `want` (ours) differ by more than `tol`, relatively. */
function mismatches(got: Stats, want: Stats, tol: number): string[] {
  const out: string[] = [];
  if (got.n !== want.n) return [`${got.n} elements, not ${want.n}`];
  const scale = Math.max(want.abs, Number.MIN_VALUE);
  const check = (what: string, a: number, b: number, s: number) => {
    if (!(Math.abs(a - b) <= tol * s)) out.push(`${what} ${a} vs ${b} (${Math.abs(a - b) / s})`);
  };
  check("sum", got.sum, want.sum, scale);
  check("dot", got.dot, want.dot, scale);
  check("abs", got.abs, want.abs, scale);
  check("l2", got.l2, want.l2, Math.max(want.l2, Number.MIN_VALUE));
  want.values?.forEach((b, i) => check(`[${i}]`, got.values![i], b, Math.abs(b)));
  return out;
}

Deno.test("goldens: each committed golden is the one the cross-check was recorded with (sha256 in crosscheck.json)", async () => {
  assert.deepEqual(Object.keys(CROSSCHECK.goldens).sort(), [...GOLDENS].sort());
  for (const name of GOLDENS) {
    const sha = await sha256Hex(await Deno.readFile(golden(name)));
    assert.equal(sha, CROSSCHECK.goldens[name], `${name}: regenerate with tests/oracle/oracle.py`);
  }
});

Deno.test("goldens: the cross-check's statistics catch one element moved by 3e-6 of the sum of |v|, and two elements swapped", () => {
  const data = Float32Array.from({ length: 5000 }, (_, i) => Math.sin(i) + 1.5);
  const want = stats(data);
  assert.deepEqual(mismatches(stats(data), want, 1e-6), []);
  const moved = data.slice();
  moved[1234] += 3e-6 * want.abs;
  assert.notDeepEqual(mismatches(stats(moved), want, 1e-6), []);
  const swapped = data.slice();
  [swapped[11], swapped[14]] = [swapped[14], swapped[11]]; // sin: −1.00 and 0.99
  assert.deepEqual(mismatches(stats(swapped), want, 1e-6).map((m) => m.split(" ")[0]), ["dot"]);
});

Deno.test("goldens: masked.safetensors holds x, both masks, guide/ and gram_target/ per mask and style layer, gram_guided/left/, and style_masked's loss and gradient", () => {
  const { tensors, metadata } = readSafetensors(golden("masked"));
  const layers: string[] = JSON.parse(metadata.config).style_layers;
  const names = [
    "x",
    "mask/left",
    "mask/disk",
    ...["left", "disk"].flatMap((m) =>
      layers.flatMap((l) => [`guide/${m}/${l}`, `gram_target/${m}/${l}`])
    ),
    ...layers.map((l) => `gram_guided/left/${l}`),
    "loss/style_masked",
    "grad/style_masked",
  ];
  assert.deepEqual([...tensors.keys()].sort(), names.sort());
  assert.deepEqual(tensors.get("grad/style_masked")!.shape, tensors.get("x")!.shape);
  assert.deepEqual(
    tensors.get("x")!.data,
    readSafetensors(golden("backward")).tensors.get("x")!.data,
  );
});

const SHARED = sharedDir();
const WHY_NOT = "not run: no shared data at ../shared or $STYLIZE_SHARED";

Deno.test({
  name: "goldens vs ../shared: the oracle's definitions on the shared goldens' inputs give " +
    "the shared goldens' outputs, every statistic within 1e-6 (Adam's 20 steps within 1e-4); " +
    "ours have the shared goldens' tensor names, and their shapes where those do not depend " +
    "on the images" + (SHARED ? "" : ` (${WHY_NOT})`),
  ignore: SHARED === null,
  fn() {
    let compared = 0;
    for (const [file, entries] of Object.entries(CROSSCHECK.entries)) {
      const path = sharedGolden(file);
      assert.ok(path, `${SHARED}/reference/${file}.safetensors is missing`);
      const shared = readSafetensors(path).tensors;
      // Adam's normalised steps amplify the last bits of two machines' float sums:
      // reference.py itself, run here, is 1.4e-5 from its own adam20 losses.
      const tol = file === "adam20" ? 1e-4 : 1e-6;
      for (const [name, want] of Object.entries(entries)) {
        const t = shared.get(name);
        assert.ok(t, `${file}: no ${name} in the shared golden`);
        const bad = mismatches(stats(t.data), want, tol);
        assert.deepEqual(bad, [], `${file} ${name}: ${bad.join("; ")}`);
        compared++;
      }
    }
    assert.equal(compared, 72);
    for (const file of GOLDENS) {
      const ours = readSafetensors(golden(file)).tensors;
      const theirs = readSafetensors(sharedGolden(file)!).tensors;
      assert.deepEqual([...ours.keys()].sort(), [...theirs.keys()].sort(), file);
      for (const [name, t] of ours) {
        if (/^(gram_|loss)/.test(name) || t.shape.length < 4) {
          assert.deepEqual(t.shape, theirs.get(name)!.shape, `${file} ${name}`);
        }
      }
    }
  },
});
