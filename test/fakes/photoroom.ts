import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import sharp from "sharp";
import {
  answerImageFault,
  drawFakeImage,
  type FakeCall,
  type FakeFault,
  FaultScript,
  listenFake,
  type ProviderFake,
  parseMultipart,
  readBody,
  sendJson,
} from "./provider-fake.js";

/**
 * A fake Photoroom API (local HTTP), both hosts on one server, following Photoroom's OpenAPI
 * document (https://docs.photoroom.com/getting-started/api-reference-openapi):
 *
 * - `POST /v1/segment` (Remove Background, Basic plan): multipart `image_file` with `format`
 *   (png|jpg|webp), `channels` (rgba|alpha), `bg_color`, `size` (preview|medium|hd|full), `crop`;
 *   errors `{detail, status_code, type}`.
 * - `POST /v2/edit` (Image Editing, Plus plan): multipart `imageFile` with `removeBackground`,
 *   `outputSize` (`auto|WxH|originalImage|croppedSubject`), `padding` (0–0.49), `background.color`,
 *   `shadow.mode`, `export.format`; errors `{error: {message}}`, 402 `{error: {detail}}`.
 *
 * `x-api-key` auth (403 otherwise); the answer is the image. Photoroom documents no content-policy
 * refusal for these endpoints, so this fake scripts none.
 */
export interface FakePhotoroom extends ProviderFake {
  /** The fields of every accepted request, with its endpoint, in order. */
  requests: { endpoint: "segment" | "edit"; fields: Record<string, string> }[];
}

const FAULTS: ReadonlySet<FakeFault> = new Set([
  "unauthorized",
  "insufficient_credits",
  "rate_limited",
  "server_error",
  "unavailable",
  "hang",
  "html_page",
  "non_image",
  "truncated",
  "wrong_size",
]);
const SEGMENT_SIZES_MEGAPIXELS: Readonly<Record<string, number>> = {
  preview: 0.25,
  medium: 1.5,
  hd: 4,
  full: 36,
};
const SHADOW_MODES = new Set([
  "ai.soft",
  "ai.hard",
  "ai.floating",
  "ai.preset-soft",
  "ai.preset-hard",
  "ai.auto-with-overrides",
]);
const EXPORT_FORMATS: Readonly<Record<string, "png" | "jpeg" | "webp">> = {
  png: "png",
  jpeg: "jpeg",
  jpg: "jpeg",
  webp: "webp",
};

type Endpoint = "segment" | "edit";

function errorBody(endpoint: Endpoint, status: number, message: string, type: string): unknown {
  if (endpoint === "segment") return { detail: message, status_code: status, type };
  return status === 402 ? { error: { detail: message } } : { error: { message } };
}

async function decodedSize(bytes: Buffer): Promise<{ width: number; height: number } | null> {
  try {
    const metadata = await sharp(bytes).metadata();
    await sharp(bytes, { failOn: "truncated" }).raw().toBuffer();
    return { width: metadata.width ?? 0, height: metadata.height ?? 0 };
  } catch {
    return null;
  }
}

export async function startFakePhotoroom(
  options: { apiKey?: string } = {},
): Promise<FakePhotoroom> {
  const apiKey = options.apiKey ?? `sk_pr_${randomUUID().replaceAll("-", "")}`;
  const script = new FaultScript();
  const calls: FakeCall[] = [];
  const requests: FakePhotoroom["requests"] = [];

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = new URL(request.url ?? "/", "http://fake").pathname;
    calls.push({ method: request.method ?? "GET", path });
    const body = await readBody(request);
    const endpoint: Endpoint | undefined =
      path === "/v1/segment" ? "segment" : path === "/v2/edit" ? "edit" : undefined;
    if (!endpoint || request.method !== "POST") {
      sendJson(response, 404, { detail: "Not Found", status_code: 404, type: "not_found" });
      return;
    }
    const fail = (
      status: number,
      message: string,
      type: string,
      headers?: Record<string, string>,
    ) => sendJson(response, status, errorBody(endpoint, status, message, type), headers);

    if (request.headers["x-api-key"] !== apiKey) {
      fail(403, "Invalid API key", "forbidden");
      return;
    }
    const form = parseMultipart(body, String(request.headers["content-type"] ?? ""));
    if (!form) {
      fail(400, "Request body must be multipart/form-data", "invalid_body");
      return;
    }
    const field = (name: string) => form.fields.get(name)?.[0];

    let answer: {
      width: number;
      height: number;
      format: "png" | "jpeg" | "webp";
      backdrop?: string;
    };
    if (endpoint === "segment") {
      const image = form.files.get("image_file")?.[0];
      if (!image) {
        fail(400, "Please provide an image.", "missing_image");
        return;
      }
      const format = field("format") ?? "png";
      const channels = field("channels") ?? "rgba";
      const size = field("size") ?? "full";
      const crop = field("crop") ?? "false";
      const megapixels = SEGMENT_SIZES_MEGAPIXELS[size];
      if (!["png", "jpg", "webp"].includes(format)) {
        fail(400, `Invalid format: ${format}`, "invalid_format");
        return;
      }
      if (!["rgba", "alpha"].includes(channels) || !["true", "false"].includes(crop)) {
        fail(400, "Invalid channels or crop value", "invalid_parameter");
        return;
      }
      if (megapixels === undefined) {
        fail(400, `Invalid size: ${size}`, "invalid_size");
        return;
      }
      const input = await decodedSize(image.bytes);
      if (!input) {
        fail(400, "The image could not be decoded.", "invalid_image");
        return;
      }
      let { width, height } = input;
      if (width * height > megapixels * 1_000_000) {
        const scale = Math.sqrt((megapixels * 1_000_000) / (width * height));
        width = Math.floor(width * scale);
        height = Math.floor(height * scale);
      }
      const bgColor = field("bg_color");
      answer = {
        width,
        height,
        format: format === "jpg" ? "jpeg" : format === "webp" ? "webp" : "png",
        ...(bgColor ? { backdrop: bgColor } : {}),
      };
    } else {
      const image = form.files.get("imageFile")?.[0];
      if (!image && !field("imageUrl")) {
        fail(400, "imageFile or imageUrl must be provided", "missing_image");
        return;
      }
      const removeBackground = field("removeBackground") ?? "true";
      if (!["true", "false"].includes(removeBackground)) {
        fail(400, "removeBackground must be boolean", "invalid_parameter");
        return;
      }
      const outputSize = field("outputSize") ?? "auto";
      if (!/^(auto|\d+x\d+|originalImage|croppedSubject)$/.test(outputSize)) {
        fail(
          400,
          "outputSize must match ^(auto|\\d+x\\d+|originalImage|croppedSubject)$",
          "invalid_parameter",
        );
        return;
      }
      const padding = field("padding");
      if (padding !== undefined && !(Number(padding) >= 0 && Number(padding) <= 0.49)) {
        fail(400, "padding must be between 0 and 0.49", "invalid_parameter");
        return;
      }
      const shadow = field("shadow.mode");
      if (shadow !== undefined && !SHADOW_MODES.has(shadow)) {
        fail(
          400,
          `shadow.mode must be one of ${[...SHADOW_MODES].join(", ")}`,
          "invalid_parameter",
        );
        return;
      }
      const exportFormat = EXPORT_FORMATS[field("export.format") ?? "png"];
      if (!exportFormat) {
        fail(400, "export.format must be png, jpeg, jpg or webp", "invalid_parameter");
        return;
      }
      const color = field("background.color");
      if (color !== undefined && removeBackground === "false") {
        fail(
          400,
          "background.color can't be provided if removeBackground is false",
          "invalid_parameter",
        );
        return;
      }
      if (!image) {
        // Shotlist uploads bytes; it never hands a provider a URL (DESIGN §4).
        fail(400, "imageUrl could not be downloaded", "invalid_image_url");
        return;
      }
      const input = await decodedSize(image.bytes);
      if (!input) {
        fail(400, "The image could not be decoded.", "invalid_image");
        return;
      }
      const custom = /^(\d+)x(\d+)$/.exec(outputSize);
      const width = custom ? Number(custom[1]) : input.width;
      const height = custom ? Number(custom[2]) : input.height;
      answer = {
        width,
        height,
        format: exportFormat,
        ...(color ? { backdrop: /^[0-9a-f]{3,8}$/i.test(color) ? `#${color}` : color } : {}),
      };
    }
    requests.push({
      endpoint,
      fields: Object.fromEntries([...form.fields].map(([name, values]) => [name, values[0] ?? ""])),
    });

    const scripted = script.take();
    if (scripted) {
      const { fault, options: faultOptions } = scripted;
      switch (fault) {
        case "unauthorized":
          fail(403, "Invalid API key", "forbidden");
          return;
        case "insufficient_credits":
          fail(
            402,
            "API credits exhausted. Visit https://app.photoroom.com/api-dashboard to purchase more API credits",
            "payment_required",
          );
          return;
        case "rate_limited":
          fail(429, "Too many requests", "rate_limit_exceeded", {
            "Retry-After": String(faultOptions.retryAfterSeconds ?? 2),
          });
          return;
        case "server_error":
          fail(
            500,
            "An unexpected error occurred. Please try again later or contact support.",
            "internal_error",
          );
          return;
        case "unavailable":
          fail(503, "Service unavailable", "unavailable");
          return;
        default:
          if (await answerImageFault(response, fault, answer)) return;
          throw new Error(`Photoroom fake cannot script ${fault}`);
      }
    }

    const bytes = await drawFakeImage(answer.width, answer.height, answer.format, {
      alpha: answer.backdrop === undefined && answer.format !== "jpeg",
      ...(answer.backdrop ? { backdrop: answer.backdrop } : {}),
    });
    response.writeHead(200, {
      "content-type": `image/${answer.format}`,
      "content-length": bytes.length,
      "x-uncertainty-score": "0.04",
      ...(endpoint === "edit"
        ? { "pr-edit-further-url": `https://app.photoroom.com/edit/${randomUUID()}` }
        : {}),
    });
    response.end(bytes);
  }

  const server = await listenFake(handle);
  return {
    url: server.url,
    apiKey,
    calls,
    requests,
    faults: FAULTS,
    failNext: (fault, count = 1, faultOptions = {}) => {
      if (!FAULTS.has(fault)) throw new Error(`Photoroom has no documented ${fault} answer`);
      script.push(fault, count, faultOptions);
    },
    close: server.close,
  };
}
