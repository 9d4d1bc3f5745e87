/**
 * The blob store contract on both stores (STYLE: one suite, several backends): a local folder
 * and an S3 bucket on a real S3-compatible server (s3rver, speaking the S3 REST API through the
 * official AWS SDK v3). Then Shotlist end to end on S3: a product imaged, its reference photo and
 * assets in the bucket, `/a/…` served from it with immutable caching; and the bad inputs.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import type { BlobStore } from "../../src/blobs/store.js";
import { assetKey } from "../../src/blobs/store.js";
import { sha256Hex } from "../../src/domain/canonical.js";
import { ShotlistError } from "../../src/domain/errors.js";
import { buildApp } from "../../src/http/app.js";
import { submitProduct } from "../../src/intake/submit.js";
import { createBlobStore } from "../../src/runtime.js";
import { countOpenJobs } from "../../src/store/jobs.js";
import { createTestRuntime, type TestRuntime, waitFor } from "../helpers/backends.js";
import { type S3Server, startS3Server } from "../helpers/s3-server.js";

const BUCKET = "shotlist-blobs";
const photo = readFileSync(
  fileURLToPath(new URL("../../examples/catalogue/images/MUG-STONEWARE-0.jpg", import.meta.url)),
);

let s3: S3Server;
before(async () => {
  s3 = await startS3Server([BUCKET]);
});
after(async () => {
  await s3?.close();
});

const stores: { name: string; open(): Promise<{ store: BlobStore; cleanup(): void }> }[] = [
  {
    name: "fs",
    async open() {
      const dir = mkdtempSync(join(tmpdir(), "shotlist-blobs-"));
      return {
        store: await createBlobStore(dir),
        cleanup: () => rmSync(dir, { recursive: true, force: true }),
      };
    },
  },
  {
    name: "s3",
    async open() {
      return {
        store: await createBlobStore(
          `s3://${BUCKET}/contract/${randomBytes(4).toString("hex")}`,
          s3.env,
        ),
        cleanup: () => {},
      };
    },
  },
];

for (const kind of stores) {
  describe(`the blob store contract on ${kind.name}`, () => {
    let store: BlobStore;
    let cleanup: () => void;
    before(async () => {
      ({ store, cleanup } = await kind.open());
    });
    after(() => cleanup());

    it("gives back exactly the bytes put under a key, and says it has it", async () => {
      const bytes = randomBytes(1_500_000);
      const key = assetKey(sha256Hex(bytes), "jpg");
      assert.equal(await store.has(key), false);
      assert.equal(await store.get(key), undefined);
      await store.put(key, bytes);
      assert.equal(await store.has(key), true);
      const got = await store.get(key);
      assert.ok(got?.equals(bytes), "same bytes");
    });

    it("takes the same key twice without harm (content-addressed: same bytes)", async () => {
      const bytes = Buffer.from("same content, same key");
      const key = assetKey(sha256Hex(bytes), "json");
      await Promise.all([store.put(key, bytes), store.put(key, bytes)]);
      await store.put(key, bytes);
      assert.ok((await store.get(key))?.equals(bytes));
    });

    it("answers a missing key as missing, and keys that differ by one character apart", async () => {
      const a = Buffer.from("a");
      const keyA = assetKey(sha256Hex(a), "png");
      await store.put(keyA, a);
      const keyB = `${keyA.slice(0, -5)}x.png`;
      assert.equal(await store.has(keyB), false);
      assert.equal(await store.get(keyB), undefined);
    });
  });
}

describe("the S3 blob store's bucket layout and failures", () => {
  it("puts objects under the prefix with their content type", async () => {
    const store = await createBlobStore(`s3://${BUCKET}/catalogue/v1/`, s3.env);
    assert.equal(store.name, "s3");
    assert.match(
      store.location,
      new RegExp(`^s3://${BUCKET}/catalogue/v1 at http://127\\.0\\.0\\.1:`),
    );
    const bytes = Buffer.from("a webp, say");
    const key = assetKey(sha256Hex(bytes), "webp");
    await store.put(key, bytes);
    const client = new S3Client({
      endpoint: s3.endpoint,
      forcePathStyle: true,
      region: "us-east-1",
      credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    });
    const head = await client.send(
      new HeadObjectCommand({ Bucket: BUCKET, Key: `catalogue/v1/${key}` }),
    );
    assert.equal(head.ContentType, "image/webp");
    assert.equal(head.ContentLength, bytes.length);
    client.destroy();
  });

  it("refuses a bad SHOTLIST_STORAGE or endpoint at start, naming the variable", async () => {
    for (const [storage, env, message] of [
      ["s3://", {}, /SHOTLIST_STORAGE: expected s3:\/\/bucket\/prefix/],
      ["s3://Upper_Case/x", {}, /SHOTLIST_STORAGE: expected s3:\/\/bucket\/prefix/],
      ["s3://shotlist-blobs/a/../b", {}, /SHOTLIST_STORAGE: the prefix .* '\.\.' part/],
      ["s3://shotlist-blobs/a//b", {}, /SHOTLIST_STORAGE: the prefix .* an empty/],
      ["s3://shotlist-blobs//b", {}, /SHOTLIST_STORAGE: the prefix .* an empty/],
      [`s3://${BUCKET}`, { AWS_ENDPOINT_URL: "not a url" }, /AWS_ENDPOINT_URL: expected the URL/],
    ] as const) {
      await assert.rejects(createBlobStore(storage, env), (error: unknown) => {
        assert.ok(error instanceof ShotlistError);
        assert.equal(error.code, "invalid_env");
        assert.match(error.message, message);
        return true;
      });
    }
  });

  it("refuses at start a bucket that does not exist or a server that does not answer", async () => {
    // At start, because a HEAD of a key cannot tell a missing key from a missing bucket.
    await assert.rejects(createBlobStore("s3://no-such-bucket/x", s3.env), (error: unknown) => {
      assert.ok(error instanceof ShotlistError);
      assert.match(
        error.message,
        /SHOTLIST_STORAGE: bucket no-such-bucket at http:\/\/127\.0\.0\.1:\d+ does not exist/,
      );
      return true;
    });
    await assert.rejects(
      createBlobStore(`s3://${BUCKET}/x`, { ...s3.env, AWS_ENDPOINT_URL: "http://127.0.0.1:9" }),
      /SHOTLIST_STORAGE: bucket shotlist-blobs at http:\/\/127\.0\.0\.1:9 cannot be reached/,
    );
  });
});

describe("Shotlist end to end on an S3 bucket", () => {
  let env: TestRuntime;
  before(async () => {
    env = await createTestRuntime("pglite", { ...s3.env, SHOTLIST_STORAGE: `s3://${BUCKET}/e2e` });
  });
  after(async () => {
    await env?.cleanup();
  });

  it("images a product into the bucket and serves its asset from it, immutable", async () => {
    assert.equal(env.runtime.blobs.name, "s3");
    const worker = env.runtime.startWorker({ pollMs: 20 });
    try {
      await submitProduct(env.runtime.intake, {
        sku: "MUG-S3",
        title: "Stoneware Mug",
        category: "home",
        referenceImages: [{ base64: photo.toString("base64") }],
      });
      await waitFor(async () => (await countOpenJobs(env.runtime.db)) === 0, "the jobs");
    } finally {
      await worker.stop();
    }
    const [hero] = await env.runtime.db.query<{ sha256: string; ext: string }>(
      `select a.sha256, a.ext from product_slots ps join assets a on a.id = ps.asset_id
       where ps.product_sku = 'MUG-S3' and ps.slot = 'hero' and ps.state = 'published'`,
    );
    assert.ok(hero, "the hero is published");
    const stored = await env.runtime.blobs.get(assetKey(hero.sha256, hero.ext));
    assert.ok(stored, "the hero is in the bucket");
    assert.equal(sha256Hex(stored), hero.sha256);
    assert.equal(
      await env.runtime.blobs.has(`references/${sha256Hex(photo).slice(0, 2)}/${sha256Hex(photo)}`),
      true,
    );
    const app = await buildApp(env.runtime);
    try {
      const response = await app.inject(`/a/${hero.sha256}.${hero.ext}`);
      assert.equal(response.statusCode, 200);
      assert.equal(response.headers["cache-control"], "public, max-age=31536000, immutable");
      assert.ok(response.rawPayload.equals(stored));
      const again = await app.inject({
        url: `/a/${hero.sha256}.${hero.ext}`,
        headers: { "if-none-match": String(response.headers.etag) },
      });
      assert.equal(again.statusCode, 304);
    } finally {
      await app.close();
    }
  });
});
