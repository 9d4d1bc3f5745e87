/**
 * Per-request cost of the idempotency layer on `POST /v1/products`, as a ratio against the same
 * route with it disabled, in the same run (issue 3's benchmark, second half).
 *
 *   node --import tsx bench/idempotency.ts [--requests 400]
 *
 * One real runtime (PGlite in a temp dir, no worker: jobs stay queued) and the app as served.
 * Each request submits a new product (so the intake does its real work: product, slots,
 * recipes, jobs) through `app.inject`, authenticated with a Bearer key.
 *   figure   — with an Idempotency-Key: the key claimed (a 'started' row) before the work and
 *              the response stored after it;
 *   baseline — the same request without the header: the layer does nothing (requests without
 *              a key are served as usual, issue 3 §2).
 * Printed beside them, not in the ratio: the same route on an app built with
 * `requireApiKeys: false` (no auth either), so auth's own share is visible, and the latency of
 * a replay. The three sides take turns in blocks of 25 in a rotating order, so drift on this
 * shared machine hits all of them.
 */
import { performance } from "node:perf_hooks";
import { loadSettings } from "../src/config/env.js";
import { buildApp } from "../src/http/app.js";
import { createLogger } from "../src/observability/logger.js";
import { createRuntime } from "../src/runtime.js";
import { createApiKey } from "../src/store/api-keys.js";
import {
  intOption,
  makeTempDir,
  mean,
  median,
  printResult,
  round,
  runAsScript,
  say,
} from "./harness.js";

const BLOCK = 25;
const SIDES = ["keyed", "unkeyed", "open"] as const;
type Side = (typeof SIDES)[number];
const WARM_UP = 25;

async function main(): Promise<void> {
  const requests = intOption(process.argv, "requests", 400);
  const temp = makeTempDir("idempotency");
  const runtime = await createRuntime(
    loadSettings({ SHOTLIST_DATA_DIR: temp.path, PORT: "0" }),
    createLogger("silent"),
  );
  try {
    const secured = await buildApp(runtime);
    const open = await buildApp(runtime, { requireApiKeys: false });
    const { key } = await createApiKey(runtime.db, { name: "bench", scopes: ["write"] });
    const bearer = { authorization: `Bearer ${key}` };
    const storedKeys = async () => {
      const [row] = await runtime.db.query<{ n: number }>(
        "select count(*)::integer as n from idempotency_keys",
      );
      return row?.n ?? 0;
    };
    let sequence = 0;
    const post = async (side: Side) => {
      const sku = `BENCH-${side}-${sequence++}`;
      const payload = { sku, title: "Bench Mug", category: "home" };
      const keysBefore = await storedKeys();
      const started = performance.now();
      const response =
        side === "keyed"
          ? await secured.inject({
              method: "POST",
              url: "/v1/products",
              headers: { ...bearer, "idempotency-key": `key-${sku}` },
              payload,
            })
          : side === "unkeyed"
            ? await secured.inject({
                method: "POST",
                url: "/v1/products",
                headers: bearer,
                payload,
              })
            : await open.inject({ method: "POST", url: "/v1/products", payload });
      const ms = performance.now() - started;
      if (response.statusCode !== 201) {
        throw new Error(`${side}: ${response.statusCode} ${response.body}`);
      }
      // Untimed: each side did what it stands for (one stored key for the keyed side only).
      const stored = (await storedKeys()) - keysBefore;
      if (stored !== (side === "keyed" ? 1 : 0)) {
        throw new Error(`${side}: ${stored} idempotency keys stored by one request`);
      }
      return ms;
    };
    for (let i = 0; i < WARM_UP; i++) {
      for (const side of SIDES) await post(side);
    }
    const times: Record<Side, number[]> = { keyed: [], unkeyed: [], open: [] };
    for (let done = 0, turn = 0; done < requests; done += BLOCK, turn++) {
      // Rotate which side goes first: keyed, unkeyed, open → unkeyed, open, keyed → …
      const order = SIDES.map((_, index) => SIDES[(index + turn) % SIDES.length] as Side);
      for (const side of order) {
        for (let i = 0; i < BLOCK; i++) times[side].push(await post(side));
      }
    }
    // A replay never reaches the intake: one lookup and the stored bytes.
    const replays: number[] = [];
    for (let i = 0; i < 100; i++) {
      const started = performance.now();
      const response = await secured.inject({
        method: "POST",
        url: "/v1/products",
        headers: { authorization: `Bearer ${key}`, "idempotency-key": "key-BENCH-keyed-0" },
        payload: { sku: "BENCH-keyed-0", title: "Bench Mug", category: "home" },
      });
      replays.push(performance.now() - started);
      if (response.headers["idempotent-replayed"] !== "true") throw new Error("not a replay");
    }
    await secured.close();
    await open.close();
    const figure = mean(times.keyed);
    const baseline = mean(times.unkeyed);
    const noAuth = mean(times.open);
    say(`POST /v1/products, ${times.keyed.length} requests a side, database ${runtime.db.kind}:`);
    say(
      `  figure    with Idempotency-Key (auth on):    mean ${round(figure, 3)} ms, median ${round(median(times.keyed), 3)} ms`,
    );
    say(
      `  baseline  without it (auth on), same run:   mean ${round(baseline, 3)} ms, median ${round(median(times.unkeyed), 3)} ms`,
    );
    say(
      `  ratio     ${round(figure / baseline, 3)}: the idempotency layer adds ${round(figure - baseline, 3)} ms a request`,
    );
    say(
      `  beside it: no auth and no key ${round(noAuth, 3)} ms (auth adds ${round(baseline - noAuth, 3)} ms); a replay takes ${round(median(replays), 3)} ms (median)`,
    );
    printResult({
      bench: "idempotency",
      figure,
      baseline,
      ratio: figure / baseline,
      unit: "ms per POST /v1/products (mean), with Idempotency-Key vs without",
      extra: {
        requestsPerSide: times.keyed.length,
        medianKeyedMs: round(median(times.keyed), 3),
        medianUnkeyedMs: round(median(times.unkeyed), 3),
        overheadMs: round(figure - baseline, 3),
        noAuthMeanMs: round(noAuth, 3),
        authOverheadMs: round(baseline - noAuth, 3),
        replayMedianMs: round(median(replays), 3),
        database: runtime.db.kind,
      },
    });
  } finally {
    await runtime.close();
    temp.remove();
  }
}

runAsScript(import.meta.url, main);
