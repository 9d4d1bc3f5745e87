/**
 * The load generator of bench/renditions.ts, in its own process so that it does not share an
 * event loop with the server it measures: autocannon sends each path of a list exactly once
 * (`Accept: image/webp`), CONNECTIONS at a time, and reports the wall time of the whole list:
 * from the first request's setup to the last response, timed here, because autocannon's own
 * duration is counted in whole ticks of its 1-s sampler (a 26-request list read as ~1 s
 * whatever the server did).
 *
 *   node --import tsx bench/renditions-load.ts ORIGIN CONNECTIONS PATHS_JSON_FILE
 *
 * Prints one JSON line: { ms, total, non2xx, errors, p50Ms, p99Ms, webp, fallbacks } (`webp`:
 * answers of type image/webp; `fallbacks`: answers carrying Shotlist's fallback header).
 */
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import autocannon from "autocannon";

const [origin, connections, pathsFile] = process.argv.slice(2);
if (!origin || !connections || !pathsFile) {
  throw new Error("usage: renditions-load.ts ORIGIN CONNECTIONS PATHS_JSON_FILE");
}
const paths = JSON.parse(readFileSync(pathsFile, "utf8")) as string[];
let next = 0;
let firstSent = 0;
let lastAnswered = 0;
let webp = 0;
let fallbacks = 0;

const result = await autocannon({
  url: origin,
  connections: Number(connections),
  amount: paths.length,
  timeout: 60,
  headers: { accept: "image/webp" },
  requests: [
    {
      setupRequest: (request) => {
        if (next === 0) firstSent = performance.now();
        return { ...request, path: paths[next++ % paths.length]! };
      },
      onResponse: (status, _body, _context, headers) => {
        lastAnswered = performance.now();
        if (status === 200 && headers?.["content-type"] === "image/webp") webp++;
        if (headers?.["shotlist-fallback"] !== undefined) fallbacks++;
      },
    },
  ],
});
const ms = lastAnswered - firstSent;
process.stdout.write(
  `${JSON.stringify({
    ms,
    total: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    webp,
    fallbacks,
  })}\n`,
);
