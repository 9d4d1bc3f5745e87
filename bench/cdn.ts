/**
 * Cached rendition requests/s and p99 through Shotlist ÷ nginx serving the same bytes from disk.
 *
 *   node --import tsx bench/cdn.ts [--seconds 10] [--connections 32]
 *
 * Figure: `GET /i/BENCH-CDN/hero/pdp` (Accept: image/webp) on a Shotlist server whose
 * rendition is already made and in the blob store; a hot request is answered from the
 * process's slot cache and byte LRU (src/http/on-demand-cache.ts), the slot re-read from the
 * database every SHOTLIST_ONDEMAND_SLOT_TTL_MS. Baseline: the Debian nginx (`/usr/sbin/nginx`) serving the
 * very same bytes as a static file. Load: autocannon in a second process, each server measured
 * twice, alternating, so drift on this shared machine hits both. Target ratio ≥ 0.5.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { heroOnlyShotList } from "../examples/shot-lists.js";
import { loadSettings } from "../src/config/env.js";
import { buildApp } from "../src/http/app.js";
import { submitProduct } from "../src/intake/submit.js";
import { createLogger } from "../src/observability/logger.js";
import { createRuntime } from "../src/runtime.js";
import { slotState } from "../src/store/on-demand.js";
import { freePort } from "../test/helpers/net.js";
import {
  intOption,
  makeTempDir,
  note,
  printResult,
  round,
  runAsScript,
  say,
  waitUntil,
} from "./harness.js";

const AUTOCANNON = fileURLToPath(
  new URL("../node_modules/autocannon/autocannon.js", import.meta.url),
);
const PHOTO = fileURLToPath(
  new URL("../examples/catalogue/images/MUG-STONEWARE-0.jpg", import.meta.url),
);
const SHOT_LIST = heroOnlyShotList(1600);

interface Load {
  requestsPerS: number;
  p99Ms: number;
  non2xx: number;
}

/** autocannon in its own process, so the load generator does not share Shotlist's event loop. */
async function autocannon(url: string, seconds: number, connections: number): Promise<Load> {
  const child = spawn(
    process.execPath,
    [
      AUTOCANNON,
      "-c",
      String(connections),
      "-d",
      String(seconds),
      "-H",
      "accept=image/webp",
      "-j",
      url,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let stdout = "";
  child.stdout.on("data", (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  const [code] = (await once(child, "exit")) as [number | null];
  if (code !== 0) throw new Error(`autocannon exited with ${code}`);
  const result = JSON.parse(stdout) as {
    requests: { average: number };
    latency: { p99: number };
    non2xx: number;
    errors: number;
  };
  if (result.errors > 0) throw new Error(`autocannon: ${result.errors} errors against ${url}`);
  return {
    requestsPerS: result.requests.average,
    p99Ms: result.latency.p99,
    non2xx: result.non2xx,
  };
}

async function main(): Promise<void> {
  const seconds = intOption(process.argv, "seconds", 10);
  const connections = intOption(process.argv, "connections", 32);
  if (!existsSync("/usr/sbin/nginx")) throw new Error("bench/cdn needs nginx at /usr/sbin/nginx");
  const temp = makeTempDir("cdn");
  const settings = loadSettings({
    ...process.env,
    SHOTLIST_DATA_DIR: join(temp.path, "data"),
    SHOTLIST_CONFIG: join(temp.path, "shotlist.yaml"),
    SHOTLIST_LOG_LEVEL: "warn",
    PORT: "0",
  });
  writeFileSync(join(temp.path, "shotlist.yaml"), SHOT_LIST);
  const runtime = await createRuntime(settings, createLogger("warn"));
  const app = await buildApp(runtime);
  let nginx: ReturnType<typeof spawn> | undefined;
  try {
    const worker = runtime.startWorker({ pollMs: 20 });
    await submitProduct(runtime.intake, {
      sku: "BENCH-CDN",
      title: "Stoneware Mug",
      category: "home",
      referenceImages: [{ base64: readFileSync(PHOTO).toString("base64") }],
    });
    await waitUntil(
      async () => (await slotState(runtime.db, "BENCH-CDN", "hero")) === "published",
      "the hero to be made",
      300_000,
    );
    await worker.stop();
    await app.listen({ port: 0, host: "127.0.0.1" });
    const address = app.server.address();
    if (address === null || typeof address === "string") throw new Error("no address");
    const shotlistUrl = `http://127.0.0.1:${address.port}/i/BENCH-CDN/hero/pdp`;

    // Make the rendition once and put its bytes where nginx serves static files.
    const made = await fetch(shotlistUrl, { headers: { accept: "image/webp" } });
    if (
      made.headers.get("content-type") !== "image/webp" ||
      made.headers.has("shotlist-fallback")
    ) {
      throw new Error(`unexpected answer: ${made.status} ${made.headers.get("content-type")}`);
    }
    const bytes = Buffer.from(await made.arrayBuffer());
    const root = join(temp.path, "www");
    mkdirSync(root);
    writeFileSync(join(root, "pdp.webp"), bytes);
    const port = await freePort();
    writeFileSync(
      join(temp.path, "nginx.conf"),
      `${process.getuid?.() === 0 ? "user root;\n" : ""}worker_processes 1;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  client_body_temp_path ${temp.path}/body_temp;
  proxy_temp_path ${temp.path}/proxy_temp;
  fastcgi_temp_path ${temp.path}/fastcgi_temp;
  uwsgi_temp_path ${temp.path}/uwsgi_temp;
  scgi_temp_path ${temp.path}/scgi_temp;
  types { image/webp webp; }
  server { listen 127.0.0.1:${port}; root ${root}; }
}
`,
    );
    nginx = spawn(
      "/usr/sbin/nginx",
      [
        "-p",
        temp.path,
        "-c",
        join(temp.path, "nginx.conf"),
        "-g",
        `daemon off; pid ${temp.path}/nginx.pid; error_log ${temp.path}/error.log;`,
      ],
      { stdio: "ignore" },
    );
    const nginxUrl = `http://127.0.0.1:${port}/pdp.webp`;
    await waitUntil(
      () =>
        fetch(nginxUrl).then(
          (response) => response.ok,
          () => false,
        ),
      "nginx to listen",
      10_000,
    );
    const fromDisk = Buffer.from(await (await fetch(nginxUrl)).arrayBuffer());
    if (!fromDisk.equals(bytes)) throw new Error("nginx does not serve the same bytes");

    note(`warm-up, then 2 × ${seconds} s per server, ${connections} connections`);
    await autocannon(shotlistUrl, 2, connections);
    await autocannon(nginxUrl, 2, connections);
    const ours: Load[] = [];
    const theirs: Load[] = [];
    for (let index = 0; index < 2; index++) {
      ours.push(await autocannon(shotlistUrl, seconds, connections));
      theirs.push(await autocannon(nginxUrl, seconds, connections));
      say(
        `round ${index + 1}: shotlist ${round(ours[index]!.requestsPerS, 0)}/s p99 ${ours[index]!.p99Ms} ms; nginx ${round(theirs[index]!.requestsPerS, 0)}/s p99 ${theirs[index]!.p99Ms} ms`,
      );
    }
    if ([...ours, ...theirs].some((load) => load.non2xx > 0)) throw new Error("non-2xx answers");
    const mean = (loads: Load[], pick: (load: Load) => number) =>
      loads.reduce((sum, load) => sum + pick(load), 0) / loads.length;
    const figure = mean(ours, (load) => load.requestsPerS);
    const baseline = mean(theirs, (load) => load.requestsPerS);
    const shotlistP99 = mean(ours, (load) => load.p99Ms);
    const nginxP99 = mean(theirs, (load) => load.p99Ms);
    say(
      `${bytes.length}-byte WebP; shotlist ${round(figure, 0)} req/s (p99 ${shotlistP99} ms), nginx from disk ${round(baseline, 0)} req/s (p99 ${nginxP99} ms)`,
    );
    printResult({
      bench: "cdn",
      figure,
      baseline,
      ratio: figure / baseline,
      unit: "requests/s",
      extra: {
        bytes: bytes.length,
        connections,
        seconds,
        shotlistP99Ms: shotlistP99,
        nginxP99Ms: nginxP99,
        /** nginx p99 ÷ Shotlist p99: 1 is as fast, lower is slower. */
        p99Ratio: round(nginxP99 / Math.max(shotlistP99, 1e-9), 4),
      },
    });
  } finally {
    if (nginx && nginx.exitCode === null) {
      nginx.kill("SIGTERM");
      await once(nginx, "exit");
    }
    await app.close();
    await runtime.close();
    temp.remove();
  }
}

runAsScript(import.meta.url, main);
