import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { FastifyInstance, InjectOptions } from "fastify";
import { loadSettings } from "../../src/config/env.js";
import { buildApp } from "../../src/http/app.js";
import { createApiKey, findActiveApiKey, revokeApiKey } from "../../src/store/api-keys.js";
import { openDb } from "../../src/store/db.js";
import { apiHeaders } from "../helpers/auth.js";
import { BACKENDS, createTestRuntime, type TestRuntime } from "../helpers/backends.js";
import { runCli } from "../helpers/cli.js";

const product = (sku: string, title = "Stoneware Mug") => ({ sku, title, category: "home" });

for (const backend of BACKENDS) {
  describe(`API keys and Idempotency-Key on ${backend}`, () => {
    let env: TestRuntime;
    let app: FastifyInstance;
    let admin: Record<string, string>;
    let writer: Record<string, string>;
    let reader: Record<string, string>;
    before(async () => {
      env = await createTestRuntime(backend);
      app = await buildApp(env.runtime);
      admin = await apiHeaders(env);
      writer = await apiHeaders(env, ["read", "write"]);
      reader = await apiHeaders(env, ["read"]);
    });
    after(async () => {
      await app.close();
      await env.cleanup();
    });

    /** Rows in the tables a POST /v1/products may write. */
    const written = async () => {
      const [row] = await env.runtime.db.query<{
        products: number;
        slots: number;
        recipes: number;
        jobs: number;
        keys: number;
      }>(
        `select (select count(*)::integer from products) as products,
                (select count(*)::integer from product_slots) as slots,
                (select count(*)::integer from recipes) as recipes,
                (select count(*)::integer from jobs) as jobs,
                (select count(*)::integer from idempotency_keys) as keys`,
      );
      return row;
    };
    const problemCode = (response: { headers: Record<string, unknown>; json(): unknown }) => {
      assert.match(String(response.headers["content-type"]), /^application\/problem\+json/);
      return (response.json() as { code: string }).code;
    };
    const post = (headers: Record<string, string>, payload: unknown, key?: string) =>
      app.inject({
        method: "POST",
        url: "/v1/products",
        headers: { ...headers, ...(key === undefined ? {} : { "idempotency-key": key }) },
        payload: payload as InjectOptions["payload"],
      });

    it("answers 401 with WWW-Authenticate for a missing, malformed, unknown or revoked key", async () => {
      const revocable = await apiHeaders(env, ["write"]);
      const ok = await app.inject({ url: "/v1/products", headers: admin });
      assert.equal(ok.statusCode, 200);
      const [id] = await env.runtime.db.query<{ id: number }>(
        "select id from api_keys where name = 'test write'",
      );
      assert.ok(id && (await revokeApiKey(env.runtime.db, id.id)));
      const before = await written();
      const cases: [string, Record<string, string>][] = [
        ["missing", {}],
        ["not Bearer", { authorization: "Basic dXNlcjpwYXNz" }],
        ["unknown", { authorization: "Bearer shl_not-a-key-this-server-made" }],
        ["revoked", revocable],
      ];
      for (const [name, headers] of cases) {
        for (const request of [
          { url: "/v1/products", headers },
          { method: "POST" as const, url: "/v1/products", headers, payload: product("MUG-401") },
          { url: "/v1/no-such-route", headers },
        ]) {
          const response = await app.inject(request);
          assert.equal(response.statusCode, 401, `${name}: ${response.body}`);
          assert.match(String(response.headers["www-authenticate"]), /^Bearer /);
          assert.equal(problemCode(response), "unauthorized", name);
        }
      }
      assert.deepEqual(await written(), before);
    });

    it("answers 403 for a key without the route's scope, and writes nothing", async () => {
      const before = await written();
      const response = await post(reader, product("MUG-403"), "scope-403");
      assert.equal(response.statusCode, 403);
      assert.equal(problemCode(response), "forbidden");
      assert.deepEqual(await written(), before);
      assert.equal((await app.inject({ url: "/v1/products", headers: reader })).statusCode, 200);
    });

    it("manages keys over HTTP with the admin scope only", async () => {
      const forbidden = await app.inject({ url: "/v1/keys", headers: writer });
      assert.equal(forbidden.statusCode, 403);
      const created = await app.inject({
        method: "POST",
        url: "/v1/keys",
        headers: admin,
        payload: { name: "shop", scopes: ["read"] },
      });
      assert.equal(created.statusCode, 201, created.body);
      const { id, key } = created.json() as { id: number; key: string };
      const listed = await app.inject({ url: "/v1/keys", headers: admin });
      assert.ok(!listed.body.includes(key), "a listing must not hold a key");
      assert.ok((listed.json() as { keys: { id: number }[] }).keys.some((k) => k.id === id));
      const bearer = { authorization: `Bearer ${key}` };
      assert.equal((await app.inject({ url: "/v1/products", headers: bearer })).statusCode, 200);
      const revoked = await app.inject({ method: "DELETE", url: `/v1/keys/${id}`, headers: admin });
      assert.equal(revoked.statusCode, 204);
      assert.equal((await app.inject({ url: "/v1/products", headers: bearer })).statusCode, 401);
      const badScope = await app.inject({
        method: "POST",
        url: "/v1/keys",
        headers: admin,
        payload: { name: "x", scopes: ["root"] },
      });
      assert.equal(badScope.statusCode, 422);
    });

    it("keeps health, metrics and the dashboard open", async () => {
      for (const url of ["/healthz", "/readyz", "/metrics", "/"]) {
        assert.equal((await app.inject(url)).statusCode, 200, url);
      }
    });

    it("replays the first response byte for byte for a retried key", async () => {
      const first = await post(writer, product("MUG-REPLAY"), "replay-1");
      assert.equal(first.statusCode, 201, first.body);
      assert.equal(first.headers["idempotent-replayed"], undefined);
      const after = await written();
      for (let retry = 0; retry < 2; retry++) {
        const again = await post(writer, product("MUG-REPLAY"), "replay-1");
        assert.equal(again.statusCode, 201);
        assert.equal(again.headers["idempotent-replayed"], "true");
        assert.equal(again.headers["content-type"], first.headers["content-type"]);
        assert.equal(again.body, first.body);
      }
      // The IETF draft's sf-string form names the same key.
      const quoted = await post(writer, product("MUG-REPLAY"), '"replay-1"');
      assert.equal(quoted.headers["idempotent-replayed"], "true");
      assert.deepEqual(await written(), after);
      // Without a key the request is processed (and the intake's own dedup answers).
      const plain = await post(writer, product("MUG-REPLAY"));
      assert.equal(plain.statusCode, 200);
      assert.equal(plain.headers["idempotent-replayed"], undefined);
    });

    it("refuses the same key with a different body (422) and writes nothing", async () => {
      await post(writer, product("MUG-422"), "reuse-1");
      const before = await written();
      const other = await post(writer, product("MUG-422", "Another Title"), "reuse-1");
      assert.equal(other.statusCode, 422);
      assert.equal(problemCode(other), "idempotency_key_reused");
      assert.deepEqual(await written(), before);
    });

    it("scopes keys to the API key", async () => {
      const first = await post(writer, product("MUG-SCOPED"), "shared-key");
      // Another API key's identical request is processed, not replayed: the intake answers
      // 200 "unchanged" where a replay would repeat the 201.
      const fromAdmin = await post(admin, product("MUG-SCOPED"), "shared-key");
      assert.equal(first.statusCode, 201);
      assert.equal(fromAdmin.statusCode, 200, fromAdmin.body);
      assert.equal(fromAdmin.headers["idempotent-replayed"], undefined);
    });

    it("processes exactly one of 20 concurrent requests with one key", async () => {
      const before = await written();
      const responses = await Promise.all(
        Array.from({ length: 20 }, () => post(writer, product("MUG-RACE"), "race-1")),
      );
      const processed = responses.filter(
        (response) => response.statusCode < 300 && !response.headers["idempotent-replayed"],
      );
      assert.equal(processed.length, 1, responses.map((r) => r.statusCode).join(","));
      for (const response of responses) {
        if (response === processed[0]) continue;
        if (response.statusCode === 409) {
          assert.equal(problemCode(response), "idempotency_key_in_use");
        } else {
          assert.equal(response.headers["idempotent-replayed"], "true");
          assert.equal(response.body, processed[0]?.body);
        }
      }
      const winner = processed[0];
      assert.ok(winner);
      const jobsCreated = (winner.json() as { jobsCreated: number }).jobsCreated;
      const afterRace = await written();
      assert.equal(afterRace?.products, (before?.products ?? 0) + 1);
      assert.equal(afterRace?.jobs, (before?.jobs ?? 0) + jobsCreated);
      assert.equal(afterRace?.keys, (before?.keys ?? 0) + 1);
    });

    it("answers 4xx to bad input with a key and writes nothing", async () => {
      const before = await written();
      const cases: [string, InjectOptions, number, string][] = [
        [
          "empty Idempotency-Key",
          { headers: { ...writer, "idempotency-key": "" }, payload: product("BAD-1") },
          400,
          "idempotency_key_invalid",
        ],
        [
          "Idempotency-Key over 255 characters",
          { headers: { ...writer, "idempotency-key": "k".repeat(256) }, payload: product("BAD-2") },
          400,
          "idempotency_key_invalid",
        ],
        [
          "Idempotency-Key that is an empty quoted string",
          { headers: { ...writer, "idempotency-key": '""' }, payload: product("BAD-1b") },
          400,
          "idempotency_key_invalid",
        ],
        [
          "Idempotency-Key with a space in it",
          { headers: { ...writer, "idempotency-key": "two words" }, payload: product("BAD-1c") },
          400,
          "idempotency_key_invalid",
        ],
        [
          "unknown field",
          {
            headers: { ...writer, "idempotency-key": "bad-3" },
            payload: { ...product("BAD-3"), price: 12 },
          },
          422,
          "invalid_request",
        ],
        [
          "unknown field in a variant",
          {
            headers: { ...writer, "idempotency-key": "bad-3b" },
            payload: {
              ...product("BAD-3B"),
              variants: [{ sku: "BAD-3B-RED", attributes: { color: "red" }, price: 12 }],
            },
          },
          422,
          "invalid_request",
        ],
        [
          "unknown field in a reference image",
          {
            headers: { ...writer, "idempotency-key": "bad-3c" },
            payload: {
              ...product("BAD-3C"),
              referenceImages: [{ url: "https://images.example.com/a.jpg", alt: "front" }],
            },
          },
          422,
          "invalid_request",
        ],
        [
          "unknown field beside a batch's products",
          {
            headers: { ...writer, "idempotency-key": "bad-3d" },
            payload: { products: [product("BAD-3D")], dryRun: true },
          },
          422,
          "invalid_request",
        ],
        [
          "empty batch",
          { headers: { ...writer, "idempotency-key": "bad-3e" }, payload: { products: [] } },
          422,
          "invalid_request",
        ],
        [
          "batch over the limit",
          {
            headers: { ...writer, "idempotency-key": "bad-4" },
            payload: { products: Array.from({ length: 1001 }, (_, i) => product(`BAD-4-${i}`)) },
          },
          422,
          "invalid_request",
        ],
        [
          "batch over the limit, without an Idempotency-Key",
          {
            headers: writer,
            payload: { products: Array.from({ length: 1001 }, (_, i) => product(`BAD-4B-${i}`)) },
          },
          422,
          "invalid_request",
        ],
        [
          "body over the size limit",
          {
            headers: { ...writer, "idempotency-key": "bad-5", "content-type": "application/json" },
            payload: JSON.stringify({ ...product("BAD-5"), title: "x".repeat(65 * 1024 * 1024) }),
          },
          413,
          "payload_too_large",
        ],
      ];
      for (const [name, request, status, code] of cases) {
        const response = await app.inject({ method: "POST", url: "/v1/products", ...request });
        assert.equal(response.statusCode, status, `${name}: ${response.body}`);
        assert.equal(problemCode(response), code, name);
        assert.ok((response.json() as { detail: string }).detail.length > 0, `${name}: a detail`);
        assert.deepEqual(await written(), before, `${name}: nothing written`);
      }
      // 255 characters is still a key.
      const longest = await post(writer, product("MUG-255"), "k".repeat(255));
      assert.equal(longest.statusCode, 201, longest.body);
    });

    it("forgets a key after 24 hours and takes over an abandoned in-flight claim", async () => {
      assert.equal((await post(writer, product("MUG-OLD"), "old-1")).statusCode, 201);
      await env.runtime.db.query(
        "update idempotency_keys set expires_at = now() - interval '1 second' where key = 'old-1'",
      );
      const reused = await post(writer, product("MUG-OLD-2"), "old-1");
      assert.equal(reused.statusCode, 201, reused.body);
      assert.equal(reused.headers["idempotent-replayed"], undefined);
      // A process that died mid-request left a 'started' row: 409 at first, taken over later.
      await env.runtime.db.query(
        `insert into idempotency_keys (api_key_id, key, request_hash, state, expires_at)
         select api_key_id, 'dead-1', request_hash, 'started', expires_at
         from idempotency_keys where key = 'old-1'`,
      );
      const locked = await post(writer, product("MUG-OLD-2"), "dead-1");
      assert.equal(locked.statusCode, 409);
      await env.runtime.db.query(
        "update idempotency_keys set created_at = now() - interval '11 minutes' where key = 'dead-1'",
      );
      const takenOver = await post(writer, product("MUG-OLD-2"), "dead-1");
      assert.equal(takenOver.statusCode, 200, takenOver.body);
      assert.equal(takenOver.headers["idempotent-replayed"], undefined);
    });

    it("refuses a revoked key with 401 whatever it carries, and writes nothing", async () => {
      const made = await createApiKey(env.runtime.db, { name: "to revoke", scopes: ["write"] });
      const revocable = { authorization: `Bearer ${made.key}` };
      assert.equal((await post(revocable, product("REVOKED-0"), "before-revoke")).statusCode, 201);
      assert.ok(await revokeApiKey(env.runtime.db, made.id));
      const before = await written();
      for (const payload of [product("REVOKED-1"), { products: [product("REVOKED-2")] }]) {
        const response = await post(revocable, payload, "revoked-key-1");
        assert.equal(response.statusCode, 401, response.body);
        assert.equal(problemCode(response), "unauthorized");
      }
      assert.deepEqual(await written(), before);
    });

    it("does not keep an error response: a corrected retry with the same key runs", async () => {
      const refused = await post(writer, { sku: "MUG-FIX", category: "home" }, "fix-1");
      assert.equal(refused.statusCode, 422);
      const fixed = await post(writer, product("MUG-FIX"), "fix-1");
      assert.equal(fixed.statusCode, 201, fixed.body);
      assert.equal(fixed.headers["idempotent-replayed"], undefined);
    });
  });
}

describe("shotlist keys", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "shotlist-keys-"));
  after(() => rmSync(dataDir, { recursive: true, force: true }));
  const env = { SHOTLIST_DATA_DIR: dataDir };

  const stdoutOf = async (args: string[]) => {
    const run = runCli(args, env);
    let stdout = "";
    run.child.stdout?.on("data", (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    const code = await run.exited;
    assert.equal(code, 0, run.output());
    return stdout;
  };

  it("create prints only the key on its own line; list never prints it; revoke ends it", async () => {
    const stdout = await stdoutOf(["keys", "create", "--scopes", "read,write", "--name", "ci"]);
    assert.match(stdout, /^shl_[A-Za-z0-9_-]{43}\n$/);
    const key = stdout.trim();
    const listed = await stdoutOf(["keys", "list"]);
    assert.match(listed, /read,write\s+active/);
    assert.match(listed, /ci$/m);
    assert.ok(!listed.includes(key), "keys list must not print a key");
    const db = await openDb(loadSettings(env));
    try {
      const found = await findActiveApiKey(db, key);
      assert.deepEqual(found?.scopes, ["read", "write"]);
      assert.equal(found?.name, "ci");
    } finally {
      await db.close();
    }
    await stdoutOf(["keys", "revoke", "1"]);
    const reopened = await openDb(loadSettings(env));
    try {
      assert.equal(await findActiveApiKey(reopened, key), undefined);
    } finally {
      await reopened.close();
    }
    const bad = runCli(["keys", "create", "--scopes", "read,root"], env);
    assert.equal(await bad.exited, 1);
    assert.match(bad.output(), /invalid_request: unknown scope root/);
  });
});
