import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { describe, it } from "node:test";
import { ShotlistError } from "../../src/domain/errors.js";
import {
  type FalJsonWebKey,
  falSignedMessage,
  verifyFalWebhook,
} from "../../src/providers/fal/webhook.js";
import {
  signReplicateWebhook,
  verifyReplicateWebhook,
} from "../../src/providers/replicate/webhook.js";

const NOW_MS = Date.UTC(2026, 10, 26, 8, 0, 0);
const NOW_S = NOW_MS / 1000;

function refusedWith(code: string, status: number) {
  return (error: unknown) =>
    error instanceof ShotlistError && error.code === code && error.status === status;
}

describe("verifyReplicateWebhook", () => {
  const secret = `whsec_${randomBytes(24).toString("base64")}`;
  const body = JSON.stringify({
    id: "ufawqhfynnddngldkgtslldrkq",
    version: "a".repeat(64),
    status: "succeeded",
    output: ["https://replicate.delivery/x/out-0.webp"],
    error: null,
  });
  const signed = (overrides: Record<string, string> = {}, rawBody = body, key = secret) => ({
    "webhook-id": "msg_1",
    "webhook-timestamp": String(NOW_S),
    "webhook-signature": signReplicateWebhook(key, "msg_1", NOW_S, rawBody),
    ...overrides,
  });
  const known = (id: string) => id === "ufawqhfynnddngldkgtslldrkq";

  it("accepts a signed callback and answers the prediction id and its final status", async () => {
    const event = await verifyReplicateWebhook({
      headers: signed(),
      rawBody: body,
      secrets: secret,
      isKnownPrediction: known,
      nowMs: NOW_MS,
    });
    assert.deepEqual(event, {
      webhookId: "msg_1",
      predictionId: "ufawqhfynnddngldkgtslldrkq",
      status: "succeeded",
      terminal: true,
      error: null,
    });
  });

  it("reads fetch Headers and any header case", async () => {
    const headers = new Headers(
      Object.entries(signed()).map(([name, value]): [string, string] => [
        name.toUpperCase(),
        value,
      ]),
    );
    const event = await verifyReplicateWebhook({
      headers,
      rawBody: Buffer.from(body),
      secrets: secret,
      isKnownPrediction: known,
      nowMs: NOW_MS,
    });
    assert.equal(event.status, "succeeded");
  });

  it("accepts either secret during a rotation, and any one of several signatures", async () => {
    const old = `whsec_${randomBytes(24).toString("base64")}`;
    const both = `${signReplicateWebhook(old, "msg_1", NOW_S, body)} ${signed()["webhook-signature"]}`;
    const event = await verifyReplicateWebhook({
      headers: signed({ "webhook-signature": both }),
      rawBody: body,
      secrets: [old, secret],
      isKnownPrediction: known,
      nowMs: NOW_MS,
    });
    assert.equal(event.predictionId, "ufawqhfynnddngldkgtslldrkq");
  });

  it("says a prediction still running is not terminal", async () => {
    const running = body.replace('"succeeded"', '"processing"');
    const event = await verifyReplicateWebhook({
      headers: signed({}, running),
      rawBody: running,
      secrets: secret,
      isKnownPrediction: known,
      nowMs: NOW_MS,
    });
    assert.deepEqual([event.status, event.terminal], ["processing", false]);
  });

  it("refuses a signature made with another secret", async () => {
    const other = `whsec_${randomBytes(24).toString("base64")}`;
    await assert.rejects(
      verifyReplicateWebhook({
        headers: signed({}, body, other),
        rawBody: body,
        secrets: secret,
        isKnownPrediction: known,
        nowMs: NOW_MS,
      }),
      refusedWith("invalid_signature", 401),
    );
  });

  it("refuses a body changed after signing", async () => {
    await assert.rejects(
      verifyReplicateWebhook({
        headers: signed(),
        rawBody: body.replace("succeeded", "failed"),
        secrets: secret,
        isKnownPrediction: known,
        nowMs: NOW_MS,
      }),
      refusedWith("invalid_signature", 401),
    );
  });

  it("refuses a replay older than five minutes, and a timestamp from the future", async () => {
    for (const nowMs of [NOW_MS + 301_000, NOW_MS - 301_000]) {
      await assert.rejects(
        verifyReplicateWebhook({
          headers: signed(),
          rawBody: body,
          secrets: secret,
          isKnownPrediction: known,
          nowMs,
        }),
        refusedWith("invalid_signature", 401),
      );
    }
  });

  it("refuses a callback without its signature headers", async () => {
    const { "webhook-signature": _dropped, ...unsigned } = signed();
    await assert.rejects(
      verifyReplicateWebhook({
        headers: unsigned,
        rawBody: body,
        secrets: secret,
        isKnownPrediction: known,
        nowMs: NOW_MS,
      }),
      refusedWith("invalid_signature", 401),
    );
  });

  it("refuses a signed callback for a prediction no ledger row holds", async () => {
    await assert.rejects(
      verifyReplicateWebhook({
        headers: signed(),
        rawBody: body,
        secrets: secret,
        isKnownPrediction: async () => false,
        nowMs: NOW_MS,
      }),
      refusedWith("unknown_prediction", 404),
    );
  });

  it("refuses a signed body that is not a prediction", async () => {
    const notPrediction = JSON.stringify({ hello: "world" });
    await assert.rejects(
      verifyReplicateWebhook({
        headers: signed({}, notPrediction),
        rawBody: notPrediction,
        secrets: secret,
        isKnownPrediction: known,
        nowMs: NOW_MS,
      }),
      refusedWith("invalid_json", 400),
    );
  });
});

describe("verifyFalWebhook", () => {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const keys = [publicKey.export({ format: "jwk" }) as FalJsonWebKey];
  const requestId = "024ca5b1-45d3-4afd-883e-ad3abe2a1c4d";
  const body = JSON.stringify({
    request_id: requestId,
    gateway_request_id: requestId,
    status: "OK",
    payload: { images: [{ url: "https://fal.media/x.png", width: 64, height: 64 }] },
  });
  const signed = (
    rawBody = body,
    options: { key?: typeof privateKey; id?: string; timestamp?: number } = {},
  ) => {
    const timestamp = String(options.timestamp ?? NOW_S);
    const id = options.id ?? requestId;
    return {
      "x-fal-webhook-request-id": id,
      "x-fal-webhook-user-id": "user_1",
      "x-fal-webhook-timestamp": timestamp,
      "x-fal-webhook-signature": sign(
        null,
        falSignedMessage(id, "user_1", timestamp, Buffer.from(rawBody)),
        options.key ?? privateKey,
      ).toString("hex"),
    };
  };
  const known = (id: string) => id === requestId;

  it("accepts a callback signed by a JWKS key and answers the request id and status", async () => {
    const event = await verifyFalWebhook({
      headers: signed(),
      rawBody: body,
      keys,
      isKnownRequest: known,
      nowMs: NOW_MS,
    });
    assert.deepEqual(event, { requestId, status: "succeeded", error: null });
  });

  it("answers failed with fal's error for an ERROR callback", async () => {
    const failed = JSON.stringify({
      request_id: requestId,
      gateway_request_id: requestId,
      status: "ERROR",
      error: "Invalid status code: 422",
      payload: { detail: [{ loc: ["body", "prompt"], msg: "field required", type: "missing" }] },
    });
    const event = await verifyFalWebhook({
      headers: signed(failed),
      rawBody: failed,
      keys,
      isKnownRequest: known,
      nowMs: NOW_MS,
    });
    assert.deepEqual(event, { requestId, status: "failed", error: "Invalid status code: 422" });
  });

  it("refuses a signature by a key that is not in the JWKS", async () => {
    const stranger = generateKeyPairSync("ed25519").privateKey;
    await assert.rejects(
      verifyFalWebhook({
        headers: signed(body, { key: stranger }),
        rawBody: body,
        keys,
        isKnownRequest: known,
        nowMs: NOW_MS,
      }),
      refusedWith("invalid_signature", 401),
    );
  });

  it("refuses a body changed after signing", async () => {
    await assert.rejects(
      verifyFalWebhook({
        headers: signed(),
        rawBody: body.replace('"OK"', '"ERROR"'),
        keys,
        isKnownRequest: known,
        nowMs: NOW_MS,
      }),
      refusedWith("invalid_signature", 401),
    );
  });

  it("refuses a stale timestamp", async () => {
    await assert.rejects(
      verifyFalWebhook({
        headers: signed(body, { timestamp: NOW_S - 600 }),
        rawBody: body,
        keys,
        isKnownRequest: known,
        nowMs: NOW_MS,
      }),
      refusedWith("invalid_signature", 401),
    );
  });

  it("refuses missing headers and a signature that is not hex", async () => {
    const { "x-fal-webhook-timestamp": _dropped, ...missing } = signed();
    await assert.rejects(
      verifyFalWebhook({
        headers: missing,
        rawBody: body,
        keys,
        isKnownRequest: known,
        nowMs: NOW_MS,
      }),
      refusedWith("invalid_signature", 401),
    );
    await assert.rejects(
      verifyFalWebhook({
        headers: { ...signed(), "x-fal-webhook-signature": "zz" },
        rawBody: body,
        keys,
        isKnownRequest: known,
        nowMs: NOW_MS,
      }),
      refusedWith("invalid_signature", 401),
    );
  });

  it("refuses a signed body for another request than its header names", async () => {
    const otherId = "11111111-2222-3333-4444-555555555555";
    await assert.rejects(
      verifyFalWebhook({
        headers: signed(body, { id: otherId }),
        rawBody: body,
        keys,
        isKnownRequest: () => true,
        nowMs: NOW_MS,
      }),
      refusedWith("invalid_json", 400),
    );
  });

  it("refuses a signed callback for a request no ledger row holds", async () => {
    await assert.rejects(
      verifyFalWebhook({
        headers: signed(),
        rawBody: body,
        keys,
        isKnownRequest: () => false,
        nowMs: NOW_MS,
      }),
      refusedWith("unknown_prediction", 404),
    );
  });
});
