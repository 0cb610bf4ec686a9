import assert from "node:assert/strict";
import { UserError } from "../../src/engine/errors.ts";
import { WEIGHTS_SIZE, WEIGHTS_URL } from "../../src/engine/model/weights.ts";
import { loadPageWeights } from "../../src/web/weights.ts";
import { weightsPath } from "../../tests/data.ts";

const WEIGHTS = await weightsPath();
const BASE = "https://static.example/stylize/";
const ORIGIN_COPY = `${BASE}sqz_notop.mat`;

/** A fetch answering each URL from `answers` (others: a network error), recording the URLs asked. */
function fakeFetch(answers: Record<string, () => Response>) {
  const asked: string[] = [];
  const get = (input: RequestInfo | URL) => {
    const url = String(input);
    asked.push(url);
    const answer = answers[url];
    return answer ? Promise.resolve(answer()) : Promise.reject(new TypeError("network error"));
  };
  return { asked, fetch: get as typeof fetch };
}

const CATCH_ALL_HTML = "<!doctype html><title>My site</title><p>Welcome";
const catchAll = () =>
  new Response(CATCH_ALL_HTML, {
    headers: { "content-type": "text/html" },
  });

Deno.test("page weights: the origin's catch-all HTML page is passed over for the pinned URL", async () => {
  const bytes = await Deno.readFile(WEIGHTS);
  const f = fakeFetch({
    [ORIGIN_COPY]: catchAll,
    [WEIGHTS_URL]: () => new Response(bytes),
  });
  const weights = await loadPageWeights(BASE, () => {}, { fetch: f.fetch, cache: null });
  assert.deepEqual(f.asked, [ORIGIN_COPY, WEIGHTS_URL]);
  assert.ok(weights.has("conv1"), [...weights.keys()].join(","));
});

Deno.test("page weights: a file of the right size that fails sha256 is passed over too", async () => {
  const bytes = await Deno.readFile(WEIGHTS);
  const damaged = bytes.slice();
  damaged[1000] ^= 0xff;
  const f = fakeFetch({
    [ORIGIN_COPY]: () => new Response(damaged),
    [WEIGHTS_URL]: () => new Response(bytes),
  });
  const weights = await loadPageWeights(BASE, () => {}, { fetch: f.fetch, cache: null });
  assert.deepEqual(f.asked, [ORIGIN_COPY, WEIGHTS_URL]);
  assert.ok(weights.has("fire9/expand3x3"), [...weights.keys()].join(","));
});

Deno.test("page weights: the origin's verified copy is used, the pinned URL not asked", async () => {
  const bytes = await Deno.readFile(WEIGHTS);
  const f = fakeFetch({ [ORIGIN_COPY]: () => new Response(bytes) });
  await loadPageWeights(BASE, () => {}, { fetch: f.fetch, cache: null });
  assert.deepEqual(f.asked, [ORIGIN_COPY]);
});

Deno.test("page weights: no source with the weights is one UserError naming what each answered", async () => {
  const f = fakeFetch({
    [ORIGIN_COPY]: catchAll,
    [WEIGHTS_URL]: () => new Response("Not Found", { status: 404 }),
  });
  await assert.rejects(
    loadPageWeights(BASE, () => {}, { fetch: f.fetch, cache: null }),
    (e) =>
      e instanceof UserError && !e.message.includes("\n") &&
      e.message.includes(
        `${ORIGIN_COPY}: ${CATCH_ALL_HTML.length} bytes, not the ${WEIGHTS_SIZE} of the weights`,
      ) &&
      e.message.includes(`${WEIGHTS_URL}: HTTP 404`),
  );
});
