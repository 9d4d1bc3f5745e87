import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { apiHeaders } from "../helpers/auth.js";
import { createTestRuntime, type TestRuntime, waitFor } from "../helpers/backends.js";
import { type CliProcess, runCli } from "../helpers/cli.js";
import { freePort } from "../helpers/net.js";

// test/integration/auth-idempotency.test.ts races 20 requests inside one process (on PGlite and
// PostgreSQL). Here they race across two API processes behind no shared memory, as behind a load
// balancer: only the database's `started` row can make exactly one of them win.
describe("20 concurrent requests with one Idempotency-Key across two API processes", () => {
  let env: TestRuntime;
  const servers: { process: CliProcess; url: string }[] = [];
  before(async () => {
    env = await createTestRuntime("postgres");
    for (let index = 0; index < 2; index++) {
      const port = await freePort();
      const process = runCli(["serve", "--no-worker"], {
        SHOTLIST_DATABASE_URL: env.databaseUrl ?? "",
        SHOTLIST_DATA_DIR: env.dataDir,
        PORT: String(port),
      });
      servers.push({ process, url: `http://127.0.0.1:${port}` });
    }
    await waitFor(
      async () => servers.every((server) => /Shotlist is serving/.test(server.process.output())),
      "both API processes to listen",
      60_000,
    );
  });
  after(async () => {
    for (const server of servers) server.process.child.kill("SIGTERM");
    await Promise.all(servers.map((server) => server.process.exited));
    await env.cleanup();
  });

  it("processes exactly one; the others get 409 or the replay, and one product is written", async (t) => {
    const headers = await apiHeaders(env, ["read", "write"]);
    const body = JSON.stringify({ sku: "MUG-FLEET-RACE", title: "Race Mug", category: "home" });
    const [before] = await env.runtime.db.query<{ products: number; keys: number }>(
      `select (select count(*)::integer from products) as products,
              (select count(*)::integer from idempotency_keys) as keys`,
    );
    const responses = await Promise.all(
      Array.from({ length: 20 }, async (_, index) => {
        const server = servers[index % servers.length];
        const response = await fetch(`${server?.url}/v1/products`, {
          method: "POST",
          headers: { ...headers, "content-type": "application/json", "idempotency-key": "fleet-1" },
          body,
        });
        return {
          status: response.status,
          replayed: response.headers.get("idempotent-replayed"),
          contentType: response.headers.get("content-type") ?? "",
          text: await response.text(),
        };
      }),
    );
    const summary = responses.map((response) => response.status).join(",");
    t.diagnostic(
      `answers: ${summary} (${responses.filter((response) => response.replayed === "true").length} replays)`,
    );
    const processed = responses.filter(
      (response) => response.status < 300 && response.replayed === null,
    );
    assert.equal(processed.length, 1, `exactly one processed: ${summary}`);
    const winner = processed[0];
    assert.ok(winner);
    for (const response of responses) {
      if (response === winner) continue;
      if (response.status === 409) {
        assert.match(response.contentType, /^application\/problem\+json/);
        assert.equal(
          (JSON.parse(response.text) as { code: string }).code,
          "idempotency_key_in_use",
        );
      } else {
        assert.equal(response.replayed, "true", `a replay: ${response.status}`);
        assert.equal(response.status, winner.status);
        assert.equal(response.text, winner.text, "replayed byte for byte");
      }
    }
    // Once the winner has answered, a retry on either process gets its stored response.
    for (const server of servers) {
      const retry = await fetch(`${server.url}/v1/products`, {
        method: "POST",
        headers: { ...headers, "content-type": "application/json", "idempotency-key": "fleet-1" },
        body,
      });
      assert.equal(retry.headers.get("idempotent-replayed"), "true");
      assert.equal(retry.status, winner.status);
      assert.equal(await retry.text(), winner.text, "replayed byte for byte");
    }
    const [afterRace] = await env.runtime.db.query<{ products: number; keys: number }>(
      `select (select count(*)::integer from products) as products,
              (select count(*)::integer from idempotency_keys) as keys`,
    );
    assert.equal(afterRace?.products, (before?.products ?? 0) + 1, "one product written");
    assert.equal(afterRace?.keys, (before?.keys ?? 0) + 1, "one idempotency record");
  });
});
