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
 * A fake remove.bg API (local HTTP) for `POST /v1.0/removebg`, as documented at
 * https://www.remove.bg/api: `X-Api-Key` auth (403 "Authentication failed" otherwise), a
 * multipart body with `image_file` (or `image_url` / `image_file_b64`) and the `size`, `type`,
 * `format`, `channels`, `bg_color` options, validated like the API (400 with
 * `{"errors":[{title, code}]}`); the answer is the image itself with `X-Width`, `X-Height`,
 * `X-Type`, `X-Credits-Charged` and the `X-RateLimit-*` headers; 402 when out of credits, 429
 * with `Retry-After`. remove.bg has no content-policy refusal, so this fake scripts none.
 */
export interface FakeRemoveBg extends ProviderFake {
  /** The multipart fields of every accepted request, in order (files as their byte length). */
  requests: { fields: Record<string, string>; imageWidth: number; imageHeight: number }[];
}

const SIZES_FULL = new Set(["full", "4k", "auto", "50MP"]);
const SIZES_MEGAPIXELS: Readonly<Record<string, number>> = {
  preview: 0.25,
  small: 0.25,
  regular: 0.25,
  medium: 1.5,
  hd: 4,
};
const TYPES = new Set(["auto", "person", "product", "car", "animal", "graphic", "transportation"]);
const FORMATS = new Set(["auto", "png", "jpg", "zip"]);
const RATE_LIMIT_PER_MINUTE = 500;
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

function removeBgError(
  response: ServerResponse,
  status: number,
  title: string,
  code?: string,
  headers: Record<string, string> = {},
): void {
  sendJson(response, status, { errors: [{ title, ...(code ? { code } : {}) }] }, headers);
}

export async function startFakeRemoveBg(options: { apiKey?: string } = {}): Promise<FakeRemoveBg> {
  const apiKey = options.apiKey ?? `rbg_${randomUUID().replaceAll("-", "")}`;
  const script = new FaultScript();
  const calls: FakeCall[] = [];
  const requests: FakeRemoveBg["requests"] = [];
  let remaining = RATE_LIMIT_PER_MINUTE;

  const rateHeaders = (): Record<string, string> => ({
    "X-RateLimit-Limit": String(RATE_LIMIT_PER_MINUTE),
    "X-RateLimit-Remaining": String(Math.max(0, remaining)),
    "X-RateLimit-Reset": String(Math.ceil(Date.now() / 1000) + 60),
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = new URL(request.url ?? "/", "http://fake").pathname;
    calls.push({ method: request.method ?? "GET", path });
    const body = await readBody(request);
    if (request.method !== "POST" || path !== "/v1.0/removebg") {
      removeBgError(response, 404, "Not found");
      return;
    }
    if (request.headers["x-api-key"] !== apiKey) {
      removeBgError(response, 403, "API Key invalid", "auth_failed");
      return;
    }
    const form = parseMultipart(body, String(request.headers["content-type"] ?? ""));
    if (!form) {
      removeBgError(response, 400, "Request body must be multipart/form-data", "invalid_body");
      return;
    }
    const field = (name: string) => form.fields.get(name)?.[0];
    const image = form.files.get("image_file")?.[0];
    if (!image && !field("image_url") && !field("image_file_b64")) {
      removeBgError(response, 400, "No image given", "missing_source");
      return;
    }
    const size = field("size") ?? "preview";
    const type = field("type") ?? "auto";
    const format = field("format") ?? "auto";
    if (!SIZES_FULL.has(size) && SIZES_MEGAPIXELS[size] === undefined) {
      removeBgError(response, 400, `Invalid value for size: ${size}`, "invalid_parameter");
      return;
    }
    if (!TYPES.has(type)) {
      removeBgError(response, 400, `Invalid value for type: ${type}`, "invalid_parameter");
      return;
    }
    if (!FORMATS.has(format)) {
      removeBgError(response, 400, `Invalid value for format: ${format}`, "invalid_parameter");
      return;
    }
    const bgColor = field("bg_color");
    if (bgColor !== undefined && !/^[0-9a-f]{3}([0-9a-f]{3})?([0-9a-f]{2})?$/i.test(bgColor)) {
      removeBgError(response, 400, `Invalid value for bg_color: ${bgColor}`, "invalid_parameter");
      return;
    }
    if (!image) {
      // This fake serves uploads only: Shotlist never hands a provider a URL (DESIGN §4).
      removeBgError(response, 400, "Failed to read image from URL", "invalid_image_url");
      return;
    }
    let inputWidth: number;
    let inputHeight: number;
    try {
      const metadata = await sharp(image.bytes).metadata();
      await sharp(image.bytes, { failOn: "truncated" }).raw().toBuffer();
      inputWidth = metadata.width ?? 0;
      inputHeight = metadata.height ?? 0;
    } catch {
      removeBgError(response, 400, "Failed to read image", "invalid_image");
      return;
    }
    if (inputWidth * inputHeight > 25_000_000) {
      removeBgError(response, 400, "Input image exceeds 25 megapixels", "image_too_large");
      return;
    }
    requests.push({
      fields: Object.fromEntries([...form.fields].map(([name, values]) => [name, values[0] ?? ""])),
      imageWidth: inputWidth,
      imageHeight: inputHeight,
    });

    const scripted = script.take();
    remaining--;
    if (scripted) {
      const { fault, options: faultOptions } = scripted;
      switch (fault) {
        case "unauthorized":
          removeBgError(response, 403, "API Key invalid", "auth_failed");
          return;
        case "insufficient_credits":
          removeBgError(response, 402, "Insufficient credits", "insufficient_credits");
          return;
        case "rate_limited":
          removeBgError(response, 429, "Rate limit exceeded", "rate_limit_exceeded", {
            ...rateHeaders(),
            "X-RateLimit-Remaining": "0",
            "Retry-After": String(faultOptions.retryAfterSeconds ?? 2),
          });
          return;
        case "server_error":
          removeBgError(response, 500, "Internal server error", "internal_error");
          return;
        case "unavailable":
          removeBgError(response, 503, "Service temporarily unavailable", "unavailable");
          return;
        default:
          if (
            await answerImageFault(response, fault, {
              width: inputWidth,
              height: inputHeight,
              format: "png",
              headers: rateHeaders(),
            })
          ) {
            return;
          }
          throw new Error(`remove.bg fake cannot script ${fault}`);
      }
    }

    let width = inputWidth;
    let height = inputHeight;
    const megapixels = SIZES_MEGAPIXELS[size];
    if (megapixels !== undefined && width * height > megapixels * 1_000_000) {
      const scale = Math.sqrt((megapixels * 1_000_000) / (width * height));
      width = Math.max(1, Math.floor(width * scale));
      height = Math.max(1, Math.floor(height * scale));
    }
    const asJpeg = format === "jpg";
    const bytes = await drawFakeImage(width, height, asJpeg ? "jpeg" : "png", {
      alpha: !asJpeg && bgColor === undefined,
      ...(bgColor ? { backdrop: `#${bgColor}` } : {}),
    });
    response.writeHead(200, {
      "content-type": asJpeg ? "image/jpeg" : "image/png",
      "content-length": bytes.length,
      "X-Type": type === "auto" ? "product" : type,
      "X-Width": String(width),
      "X-Height": String(height),
      "X-Credits-Charged": "1",
      "X-Foreground-Top": String(Math.round(height * 0.2)),
      "X-Foreground-Left": String(Math.round(width * 0.2)),
      "X-Foreground-Width": String(Math.round(width * 0.6)),
      "X-Foreground-Height": String(Math.round(height * 0.6)),
      ...rateHeaders(),
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
      if (!FAULTS.has(fault)) throw new Error(`remove.bg has no documented ${fault} answer`);
      script.push(fault, count, faultOptions);
    },
    close: server.close,
  };
}
