import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { type FakeFal, startFakeFal } from "../fakes/fal.js";
import { type FakeReplicate, startFakeReplicate } from "../fakes/replicate.js";

// The fakes are only worth their tests if they refuse what the real APIs refuse: these talk to
// them with plain fetch, the way a wrong adapter would.

describe("fake Replicate refuses what Replicate refuses", () => {
  let fake: FakeReplicate;
  const version = "e".repeat(64);
  before(async () => {
    fake = await startFakeReplicate({ versions: [version] });
  });
  after(async () => {
    await fake.close();
  });

  const create = (body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${fake.baseUrl}/predictions`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${fake.token}`,
        "content-type": "application/json",
        ...headers,
      },
      body: JSON.stringify(body),
    });

  it("answers 401 problem JSON without a token, or with another one", async () => {
    for (const authorization of [undefined, "Bearer r8_not-the-token"]) {
      const response = await fetch(`${fake.baseUrl}/predictions`, {
        method: "POST",
        headers: authorization ? { authorization } : {},
        body: "{}",
      });
      assert.equal(response.status, 401);
      assert.match(response.headers.get("content-type") ?? "", /problem\+json/);
      const problem = (await response.json()) as { title: string; status: number };
      assert.deepEqual([problem.title, problem.status], ["Unauthenticated", 401]);
    }
  });

  it("answers 422 for a version it does not know or a missing input", async () => {
    const unknown = await create({ version: "f".repeat(64), input: {} });
    assert.equal(unknown.status, 422);
    assert.match(((await unknown.json()) as { detail: string }).detail, /version does not exist/);
    const noInput = await create({ version });
    assert.equal(noInput.status, 422);
    assert.equal(((await noInput.json()) as { title: string }).title, "Input validation failed");
  });

  it("answers 422 for a non-integer size or a data URI that is not base64", async () => {
    const badSize = await create({ version, input: { width: "wide", height: 10 } });
    assert.equal(badSize.status, 422);
    const badUri = await create({ version, input: { image: "data:image/png;base64,@@@" } });
    assert.equal(badUri.status, 422);
  });

  it("refuses Prefer: wait, which the async adapter must never send", async () => {
    const response = await create({ version, input: {} }, { prefer: "wait" });
    assert.equal(response.status, 400);
  });

  it("answers 404 for a prediction that does not exist", async () => {
    const response = await fetch(`${fake.baseUrl}/predictions/nope`, {
      headers: { authorization: `Bearer ${fake.token}` },
    });
    assert.equal(response.status, 404);
  });

  it("creates a prediction as starting, with its urls", async () => {
    const response = await create({ version, input: { prompt: "x" } });
    assert.equal(response.status, 201);
    const prediction = (await response.json()) as { status: string; urls: { get: string } };
    assert.equal(prediction.status, "starting");
    assert.match(prediction.urls.get, /\/v1\/predictions\//);
  });
});

describe("fake fal refuses what fal refuses", () => {
  let fake: FakeFal;
  before(async () => {
    fake = await startFakeFal();
  });
  after(async () => {
    await fake.close();
  });

  const submit = (endpoint: string, body: string, authorization = `Key ${fake.key}`) =>
    fetch(`${fake.url}/${endpoint}`, {
      method: "POST",
      headers: { authorization, "content-type": "application/json" },
      body,
    });

  it("answers 401 without the Key scheme", async () => {
    const bearer = await submit("fal-ai/flux/dev", "{}", `Bearer ${fake.key}`);
    assert.equal(bearer.status, 401);
    assert.ok(((await bearer.json()) as { detail?: string }).detail);
  });

  it("answers 404 for an application it does not serve", async () => {
    const response = await submit("fal-ai/nothing-here", "{}");
    assert.equal(response.status, 404);
  });

  it("answers 422 with a typed detail list when the body is not an object", async () => {
    const response = await submit("fal-ai/flux/dev", "[1, 2]");
    assert.equal(response.status, 422);
    const body = (await response.json()) as { detail: { type: string }[] };
    assert.equal(body.detail[0]?.type, "dict_type");
  });

  it("queues a request and serves its status and result under the app, not the sub-path", async () => {
    const queued = (await (await submit("fal-ai/flux/dev", '{"prompt":"x"}')).json()) as {
      request_id: string;
      status_url: string;
      response_url: string;
    };
    assert.equal(queued.status_url, `${fake.url}/fal-ai/flux/requests/${queued.request_id}/status`);
    const early = await fetch(queued.response_url, {
      headers: { authorization: `Key ${fake.key}` },
    });
    assert.equal(early.status, 400, "no result before COMPLETED");
    const wrongApp = await fetch(`${fake.url}/fal-ai/other/requests/${queued.request_id}/status`, {
      headers: { authorization: `Key ${fake.key}` },
    });
    assert.equal(wrongApp.status, 404);
  });
});
