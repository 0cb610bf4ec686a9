/**
 * `deno task web`: builds the page into dist/web/ with esbuild and serves it
 * on 127.0.0.1 with the weights the CLI would use (`--weights`,
 * `$STYLIZE_WEIGHTS`, the cache, else a verified download);
 * `deno task web --build` only writes dist/web/.
 *
 *   deno task web [--port N] [--weights PATH] [--build]
 * @module
 */
import { parseArgs } from "node:util";
import { UserError } from "../../src/engine/errors.ts";
import { resolveWeights } from "../../src/deno/weights_file.ts";
import { buildPage, DIST_WEB } from "./build.ts";
import { pageHandler } from "./serve.ts";

const USAGE = `deno task web [--port N] [--weights PATH] [--build]

  builds the page into dist/web/ (esbuild) and serves it on 127.0.0.1
      --port N        port (default 8000)
      --weights PATH  sqz_notop.mat to serve (default: $STYLIZE_WEIGHTS, the
                      cache, else a verified download, as the CLI)
      --build         only write dist/web/ (static files for any web server)
  -h, --help          this help`;

/** The parsed flags. */
function flags(args: string[]) {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        port: { type: "string", default: "8000" },
        weights: { type: "string" },
        build: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
    });
  } catch (e) {
    throw new UserError(`${(e as Error).message.split("\n")[0]} (see --help)`);
  }
  const v = parsed.values;
  const port = Number(v.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UserError(`--port: "${v.port}" is not a port number`);
  }
  return { port, weights: v.weights, build: v.build, help: v.help };
}

/** Serves dist/web/ until the process ends. */
async function serve(port: number, weightsPath: string): Promise<void> {
  let server: Deno.HttpServer;
  try {
    server = Deno.serve({
      hostname: "127.0.0.1",
      port,
      onListen: ({ port }) => console.log(`serving the page on http://127.0.0.1:${port}/`),
    }, pageHandler({ root: DIST_WEB, weightsPath }));
  } catch (e) {
    if (e instanceof Deno.errors.AddrInUse) {
      throw new UserError(`port ${port} is in use; choose another with --port`);
    }
    throw e;
  }
  await server.finished;
}

/** Entry point: returns the exit code. */
export async function main(args: string[]): Promise<number> {
  try {
    const o = flags(args);
    if (o.help) {
      console.log(USAGE);
      return 0;
    }
    const files = await buildPage();
    console.error(`wrote ${DIST_WEB} (${files.join(", ")})`);
    if (o.build) return 0;
    const weights = await resolveWeights({
      path: o.weights,
      onProgress: (m) => console.error(m),
    });
    console.error(`weights: ${weights}`);
    await serve(o.port, weights);
    return 0;
  } catch (e) {
    if (e instanceof UserError) {
      console.error(`web: ${e.message}`);
      return 2;
    }
    throw e;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
