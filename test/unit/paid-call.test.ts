import assert from "node:assert/strict";
import { describe, it } from "node:test";
import sharp from "sharp";
import {
  checkImageAnswer,
  encodeOutput,
  kindForStatus,
  retryAfterMs,
} from "../../src/providers/paid-call.js";
import { ProviderCallError } from "../../src/providers/provider.js";
import { drawFakeImage, HTML_ERROR_PAGE } from "../fakes/provider-fake.js";
import { paidRequest } from "../fixtures/providers/requests.js";
import { pngBomb } from "../helpers/images.js";

const MAX_PIXELS = 40_000_000;

async function badOutput(promise: Promise<unknown>): Promise<ProviderCallError> {
  const error = await promise.then(
    () => assert.fail("accepted a bad answer"),
    (thrown: unknown) => thrown,
  );
  assert.ok(error instanceof ProviderCallError, String(error));
  assert.equal(error.kind, "bad_output");
  assert.equal(error.retryable, false);
  return error;
}

describe("paid call helpers", () => {
  it("reads Retry-After as seconds or an HTTP-date, and OpenAI's retry-after-ms first", () => {
    const now = Date.parse("2026-11-26T08:00:00Z");
    assert.equal(retryAfterMs(new Headers({ "retry-after": "7" }), now), 7_000);
    assert.equal(
      retryAfterMs(new Headers({ "retry-after": "Thu, 26 Nov 2026 08:00:30 GMT" }), now),
      30_000,
    );
    assert.equal(
      retryAfterMs(new Headers({ "retry-after": "Thu, 26 Nov 2026 07:59:00 GMT" }), now),
      0,
    );
    assert.equal(
      retryAfterMs(new Headers({ "retry-after-ms": "1500", "retry-after": "9" }), now),
      1_500,
    );
    assert.equal(retryAfterMs(new Headers({ "retry-after": "soon" }), now), undefined);
    assert.equal(retryAfterMs(new Headers(), now), undefined);
  });

  it("maps HTTP statuses to failure kinds", () => {
    assert.deepEqual(
      [401, 403, 402, 408, 429, 500, 502, 503, 400, 404, 413, 422].map(kindForStatus),
      [
        "unauthorized",
        "unauthorized",
        "insufficient_credits",
        "timeout",
        "rate_limited",
        "unavailable",
        "unavailable",
        "unavailable",
        "invalid_request",
        "invalid_request",
        "invalid_request",
        "invalid_request",
      ],
    );
  });

  it("refuses an HTML page even when it is labelled as an image", async () => {
    const error = await badOutput(
      checkImageAnswer("test", Buffer.from(HTML_ERROR_PAGE), {
        contentType: "image/png",
        maxPixels: MAX_PIXELS,
      }),
    );
    assert.match(error.message, /HTML page/);
  });

  it("refuses a decompression bomb as bad output without decoding it", async () => {
    await badOutput(
      checkImageAnswer("test", pngBomb(), { contentType: "image/png", maxPixels: MAX_PIXELS }),
    );
  });

  it("refuses an answer of another size than asked", async () => {
    const bytes = await drawFakeImage(300, 200, "png");
    const error = await badOutput(
      checkImageAnswer("test", bytes, {
        contentType: "image/png",
        expected: { width: 300, height: 300 },
        maxPixels: MAX_PIXELS,
      }),
    );
    assert.match(error.message, /300×200, asked for 300×300/);
  });

  it("crops an answer of another aspect ratio to the output around its centre, never stretching it", async () => {
    // Left and right thirds red, middle third blue. A centre crop to a square keeps x 256–1280, so
    // 30% across the output (x 90 of 300) is source x 563: blue. Stretching would give x 461: red.
    const answer = await sharp({
      create: { width: 1536, height: 1024, channels: 3, background: "#ff0000" },
    })
      .composite([
        {
          input: { create: { width: 512, height: 1024, channels: 3, background: "#0000ff" } },
          left: 512,
          top: 0,
        },
      ])
      .png()
      .toBuffer();
    const request = paidRequest({
      provider: "openai",
      model: "gpt-image-1",
      output: { width: 300, height: 300, format: "png" },
    });
    const output = await encodeOutput("test", answer, {
      output: request.recipe.output,
      recipeHash: request.recipeHash,
      maxPixels: MAX_PIXELS,
      digitalSourceType: "trainedAlgorithmicMedia",
    });
    assert.deepEqual([output.width, output.height, output.format], [300, 300, "png"]);
    const { data } = await sharp(output.bytes)
      .extract({ left: 90, top: 150, width: 1, height: 1 })
      .raw()
      .toBuffer({ resolveWithObject: true });
    assert.ok(
      data[2]! > 200 && data[0]! < 60,
      `blue at 30% across, got rgb(${[...data].join(",")})`,
    );
  });
});
