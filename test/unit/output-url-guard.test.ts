import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { ShotlistError } from "../../src/domain/errors.js";
import { createGuardedFetch } from "../../src/intake/address-guard.js";
import { createFalProvider } from "../../src/providers/fal/index.js";
import { createReplicateProvider } from "../../src/providers/replicate/index.js";
import { callContext, rejectsWithKind, requestFor } from "../contract/async.contract.js";
import { type FakeFal, startFakeFal } from "../fakes/fal.js";
import { type FakeReplicate, startFakeReplicate } from "../fakes/replicate.js";

const VERSION = "d".repeat(64);

async function rejectsForbidden(promise: Promise<unknown>): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof ShotlistError, String(error));
    assert.equal(error.code, "output_url_forbidden");
    return true;
  });
}

describe("provider output URLs go through the SSRF guard", () => {
  let replicate: FakeReplicate;
  let fal: FakeFal;
  let files: Server;
  let filesUrl: string;
  const fetched: string[] = [];

  before(async () => {
    replicate = await startFakeReplicate({ versions: [VERSION] });
    fal = await startFakeFal();
    files = createServer((request, response) => {
      fetched.push(request.url ?? "");
      if (request.url === "/redirect-to-metadata") {
        response.writeHead(302, { location: "http://169.254.169.254/latest/meta-data/" });
        response.end();
        return;
      }
      response.writeHead(200, { "content-type": "text/plain" });
      response.end("ok");
    });
    files.listen(0, "127.0.0.1");
    await once(files, "listening");
    filesUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
  });
  after(async () => {
    await replicate.close();
    await fal.close();
    await new Promise<void>((resolve) => files.close(() => resolve()));
  });

  const replicateWith = (allowPrivateNetworks: boolean) =>
    createReplicateProvider({
      baseUrl: replicate.baseUrl,
      apiKey: replicate.token,
      models: { flux: { version: VERSION } },
      perCallMicros: 1_000,
      timeoutMs: 5_000,
      pollIntervalMs: 5,
      fetchOutput: createGuardedFetch({ allowPrivateNetworks }),
    });

  it("refuses a Replicate output URL on a loopback address as bad_output, nothing fetched", async () => {
    const request = await requestFor({
      provider: "replicate",
      model: "flux",
      modelVersion: VERSION,
    });
    const filesBefore = replicate.calls.file;
    const error = await rejectsWithKind(
      replicateWith(false).run(request, callContext()),
      "bad_output",
      false,
    );
    assert.match(error.message, /output URL refused: .*127\.0\.0\.1/);
    assert.equal(replicate.calls.file, filesBefore, "the output file was never requested");
  });

  it("fetches the same output when private networks are explicitly allowed (tests, SHOTLIST_ALLOW_PRIVATE_NETWORKS)", async () => {
    const request = await requestFor({
      provider: "replicate",
      model: "flux",
      modelVersion: VERSION,
    });
    const result = await replicateWith(true).run(request, callContext());
    assert.equal(result.width, 64);
    assert.equal(result.height, 48);
  });

  it("refuses a fal output URL on a loopback address as bad_output", async () => {
    const provider = createFalProvider({
      baseUrl: fal.url,
      apiKey: fal.key,
      models: { "fal-ai/flux/dev": {} },
      perCallMicros: 1_000,
      timeoutMs: 5_000,
      pollIntervalMs: 5,
      fetchOutput: createGuardedFetch({ allowPrivateNetworks: false }),
    });
    const request = await requestFor({
      provider: "fal",
      model: "fal-ai/flux/dev",
      modelVersion: "fal-ai/flux/dev@unversioned",
    });
    await rejectsWithKind(provider.run(request, callContext()), "bad_output", false);
  });

  it("checks the resolved address of a host name, not only IP literals", async () => {
    const port = new URL(filesUrl).port;
    await rejectsForbidden(
      createGuardedFetch({ allowPrivateNetworks: false })(`http://localhost:${port}/by-name`),
    );
    assert.ok(!fetched.includes("/by-name"));
  });

  it("refuses the metadata address and non-http schemes before any connection", async () => {
    const guarded = createGuardedFetch({ allowPrivateNetworks: false });
    await rejectsForbidden(guarded("http://169.254.169.254/latest/meta-data/"));
    await rejectsForbidden(guarded("http://[::1]/"));
    await rejectsForbidden(guarded("file:///etc/passwd"));
  });

  it("follows at most maxRedirects redirects, and plain answers come back as a Response", async () => {
    const guarded = createGuardedFetch({ allowPrivateNetworks: true, maxRedirects: 0 });
    await rejectsForbidden(guarded(`${filesUrl}/redirect-to-metadata`));
    const answer = await createGuardedFetch({ allowPrivateNetworks: true })(`${filesUrl}/plain`);
    assert.equal(answer.status, 200);
    assert.equal(await answer.text(), "ok");
  });

  it("sends GET only", async () => {
    await assert.rejects(
      createGuardedFetch({ allowPrivateNetworks: true })(`${filesUrl}/plain`, { method: "POST" }),
      TypeError,
    );
  });
});
