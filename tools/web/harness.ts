/**
 * Drives the page in a real browser: Debian's Chromium, headless, through
 * puppeteer-core, with WebGPU on (SwiftShader's Vulkan where there is no
 * GPU). Used by the page tests, the screenshot and the browser bench.
 * @module
 */
import puppeteer, { type Browser, type Page } from "puppeteer-core";
import { type BuildOptions, buildPage } from "./build.ts";
import { pageHandler } from "./serve.ts";

/** Flags that give headless Chromium a WebGPU adapter that runs compute shaders on the CPU. */
const CHROMIUM_FLAGS = [
  "--headless=new",
  "--enable-unsafe-webgpu",
  "--enable-features=Vulkan",
  "--use-vulkan=swiftshader",
  "--use-webgpu-adapter=swiftshader",
  "--no-sandbox",
];

/** The browser: `$CHROMIUM`, else Debian's /usr/bin/chromium. */
function chromiumPath(): string {
  return Deno.env.get("CHROMIUM") || "/usr/bin/chromium";
}

/** Launches headless Chromium with {@link CHROMIUM_FLAGS}. */
export function launchBrowser(): Promise<Browser> {
  return puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    args: CHROMIUM_FLAGS,
    // The environment is passed on whole: TLS and XDG settings stay.
    env: { XDG_RUNTIME_DIR: "/tmp", ...Deno.env.toObject() },
  });
}

/** A built page served on 127.0.0.1. */
export interface Site {
  /** The page's URL. */
  url: string;
  /** The build folder. */
  dir: string;
  /** Every request's path and status, in order. */
  requests: { path: string; status: number }[];
  /** Stops the server (the network is off for the page: nothing answers on its port). */
  stopServer(): Promise<void>;
  /** Serves again on the same port. */
  restartServer(): void;
  /** Stops the server and removes the build. */
  close(): Promise<void>;
}

/** Builds the page into a temporary folder and serves it on a free port. */
export async function startSite(
  o: { weightsPath?: string; build?: BuildOptions } = {},
): Promise<Site> {
  const dir = await Deno.makeTempDir({ prefix: "stylize-web-" });
  await buildPage({ ...o.build, outDir: dir });
  const requests: Site["requests"] = [];
  const handler = pageHandler({
    root: dir,
    weightsPath: o.weightsPath,
    onRequest: (path, status) => requests.push({ path, status }),
  });
  const serve = (port: number) =>
    Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, handler);
  let server: Deno.HttpServer<Deno.NetAddr> | null = serve(0);
  const port = server.addr.port;
  const stop = async () => {
    await server?.shutdown();
    server = null;
  };
  return {
    url: `http://127.0.0.1:${port}/`,
    dir,
    requests,
    stopServer: stop,
    restartServer() {
      server ??= serve(port);
    },
    async close() {
      await stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** A page with the console errors and uncaught exceptions it logged. */
export interface OpenPage {
  page: Page;
  errors: string[];
}

/** Opens `url` in a new tab, recording console errors and page errors. */
export async function openPage(
  browser: Browser,
  url: string,
): Promise<OpenPage> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(url, { waitUntil: "load" });
  return { page, errors };
}

/** What `#status` shows. */
export interface Status {
  state: string;
  text: string;
  loss: number;
}

/** Reads `#status`. */
function readStatus(page: Page): Promise<Status> {
  return page.$eval("#status", (el) => ({
    state: (el as HTMLElement).dataset.state ?? "",
    text: el.textContent ?? "",
    loss: Number((el as HTMLElement).dataset.loss),
  }));
}

/** Waits until `#status`'s data-state is one of `states` (and `when` holds, if given). */
export async function waitForState(
  page: Page,
  states: string[],
  timeoutMs: number,
  when: (s: Status) => boolean = () => true,
): Promise<Status> {
  const end = performance.now() + timeoutMs;
  while (true) {
    const s = await readStatus(page);
    if (states.includes(s.state) && when(s)) return s;
    if (performance.now() > end) {
      throw new Error(
        `#status stayed "${s.state}" (${s.text}), waited for ${states.join("|")}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The page's form filled in: files by path, numbers as text. */
export interface RunInputs {
  content?: string;
  styles?: string[];
  size?: number;
  iters?: number;
  strength?: number;
  /** The first scale (`#min-size`): the size itself for one scale. */
  minSize?: number;
  styleSize?: number;
  stageEvery?: number;
}

/** The input of each numeric field of {@link RunInputs}. */
const FIELD_IDS: [keyof RunInputs, string][] = [
  ["size", "size"],
  ["iters", "iters"],
  ["strength", "strength"],
  ["minSize", "min-size"],
  ["styleSize", "style-size"],
  ["stageEvery", "stage-every"],
];

/** Fills the form (files and numbers given) and presses Start. */
export async function startRun(page: Page, o: RunInputs): Promise<void> {
  if (o.content) {
    await (await page.$("input#content"))!.uploadFile(o.content);
  }
  if (o.styles) {
    await (await page.$("input#style"))!.uploadFile(...o.styles);
  }
  for (const [key, id] of FIELD_IDS) {
    const v = o[key];
    if (v === undefined) continue;
    await page.$eval(
      `#${id}`,
      (el, v) => (el as HTMLInputElement).value = String(v),
      v,
    );
  }
  await page.click("#start");
}
