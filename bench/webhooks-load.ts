/**
 * The load generator of bench/webhooks.ts, run in its own process so that generating and
 * signing load does not share an event loop with the server it measures.
 *
 *   node --import tsx bench/webhooks-load.ts URL MODE SECONDS CONNECTIONS [SECRET]
 *
 * MODE `shopify`: every request is a new Shopify products/create delivery (own event id, own
 * product SKU, two colour variants, no images), signed as Shopify signs it. MODE `bare`: an
 * empty POST. Prints one JSON line with autocannon's figures.
 */
import { createHmac } from "node:crypto";
import autocannon from "autocannon";

const [url, mode, seconds, connections, secret = ""] = process.argv.slice(2);
if (!url || (mode !== "shopify" && mode !== "bare")) {
  throw new Error("usage: webhooks-load.ts URL shopify|bare SECONDS CONNECTIONS [SECRET]");
}
let sent = 0;

function shopifyRequest(request: autocannon.Request): autocannon.Request {
  const n = ++sent;
  const id = 9_000_000_000 + process.pid * 100_000 + n;
  const body = JSON.stringify({
    id,
    title: `Bench Mug ${n}`,
    product_type: "home",
    tags: "bench",
    options: [{ name: "Color", position: 1 }],
    variants: [
      { id: id * 10 + 1, sku: `BENCH-${process.pid}-${n}`, position: 1, option1: "red" },
      { id: id * 10 + 2, sku: `BENCH-${process.pid}-${n}-NAVY`, position: 2, option1: "navy" },
    ],
    images: [],
  });
  return {
    ...request,
    method: "POST",
    body,
    headers: {
      "content-type": "application/json",
      "x-shopify-topic": "products/create",
      "x-shopify-event-id": `bench-${process.pid}-${n}`,
      "x-shopify-hmac-sha256": createHmac("sha256", secret).update(body).digest("base64"),
    },
  };
}

const result = await autocannon({
  url,
  method: "POST",
  duration: Number(seconds),
  connections: Number(connections),
  requests: mode === "shopify" ? [{ setupRequest: shopifyRequest }] : undefined,
});
process.stdout.write(
  `${JSON.stringify({
    requestsPerSecond: result.requests.average,
    total: result.requests.total,
    non2xx: result.non2xx,
    errors: result.errors,
    timeouts: result.timeouts,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
  })}\n`,
);
