import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { startFakeOpenAI } from "../fakes/openai.js";
import { startFakePhotoroom } from "../fakes/photoroom.js";
import { drawFakeImage } from "../fakes/provider-fake.js";
import { startFakeRemoveBg } from "../fakes/removebg.js";

/**
 * The fakes must refuse what the real APIs refuse, or an adapter sending the wrong field name
 * would pass its contract suite and fail in production.
 */
describe("provider fakes refuse malformed requests like the real APIs", () => {
  it("remove.bg: a file under another field name is 400 missing_source, a bad size is 400", async () => {
    const fake = await startFakeRemoveBg();
    try {
      const image = new Blob([new Uint8Array(await drawFakeImage(64, 64, "png"))], {
        type: "image/png",
      });
      const wrongField = new FormData();
      wrongField.append("image", image, "a.png");
      const first = await fetch(`${fake.url}/v1.0/removebg`, {
        method: "POST",
        headers: { "X-Api-Key": fake.apiKey },
        body: wrongField,
      });
      assert.equal(first.status, 400);
      assert.deepEqual(await first.json(), {
        errors: [{ title: "No image given", code: "missing_source" }],
      });
      const badSize = new FormData();
      badSize.append("image_file", image, "a.png");
      badSize.append("size", "huge");
      const second = await fetch(`${fake.url}/v1.0/removebg`, {
        method: "POST",
        headers: { "X-Api-Key": fake.apiKey },
        body: badSize,
      });
      assert.equal(second.status, 400);
      const noKey = await fetch(`${fake.url}/v1.0/removebg`, { method: "POST", body: badSize });
      assert.equal(noKey.status, 403);
    } finally {
      await fake.close();
    }
  });

  it("Photoroom: removeBackground must be boolean; a bad outputSize or padding is 400", async () => {
    const fake = await startFakePhotoroom();
    try {
      const image = new Blob([new Uint8Array(await drawFakeImage(64, 64, "png"))], {
        type: "image/png",
      });
      const cases: [string, string, RegExp][] = [
        ["removeBackground", "yes", /removeBackground must be boolean/],
        ["outputSize", "big", /outputSize/],
        ["padding", "0.7", /padding/],
      ];
      for (const [field, value, message] of cases) {
        const form = new FormData();
        form.append("imageFile", image, "a.png");
        form.append(field, value);
        const response = await fetch(`${fake.url}/v2/edit`, {
          method: "POST",
          headers: { "x-api-key": fake.apiKey },
          body: form,
        });
        assert.equal(response.status, 400, field);
        const body = (await response.json()) as { error: { message: string } };
        assert.match(body.error.message, message);
      }
      const segment = new FormData();
      segment.append("imageFile", image, "a.png");
      const response = await fetch(`${fake.url}/v1/segment`, {
        method: "POST",
        headers: { "x-api-key": fake.apiKey },
        body: segment,
      });
      assert.equal(response.status, 400);
      assert.equal(((await response.json()) as { type: string }).type, "missing_image");
    } finally {
      await fake.close();
    }
  });

  it("OpenAI: response_format is an unknown parameter for GPT image models; a GIF edit is refused", async () => {
    const fake = await startFakeOpenAI();
    try {
      const generation = await fetch(`${fake.url}/v1/images/generations`, {
        method: "POST",
        headers: { authorization: `Bearer ${fake.apiKey}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-image-1", prompt: "a mug", response_format: "url" }),
      });
      assert.equal(generation.status, 400);
      const generationError = (await generation.json()) as {
        error: { code: string; param: string };
      };
      assert.deepEqual(
        [generationError.error.code, generationError.error.param],
        ["unknown_parameter", "response_format"],
      );
      const form = new FormData();
      form.append("model", "gpt-image-1");
      form.append("prompt", "a mug");
      form.append(
        "image[]",
        new Blob([new TextEncoder().encode("GIF89a")], { type: "image/gif" }),
        "a.gif",
      );
      const edit = await fetch(`${fake.url}/v1/images/edits`, {
        method: "POST",
        headers: { authorization: `Bearer ${fake.apiKey}` },
        body: form,
      });
      assert.equal(edit.status, 400);
      assert.equal(
        ((await edit.json()) as { error: { code: string } }).error.code,
        "unsupported_file_mimetype",
      );
      const wrongSize = await fetch(`${fake.url}/v1/images/generations`, {
        method: "POST",
        headers: { authorization: `Bearer ${fake.apiKey}`, "content-type": "application/json" },
        body: JSON.stringify({ model: "gpt-image-1", prompt: "a mug", size: "800x800" }),
      });
      assert.equal(wrongSize.status, 400);
      assert.equal(fake.requests.length, 0, "nothing malformed was accepted");
    } finally {
      await fake.close();
    }
  });
});
