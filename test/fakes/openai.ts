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
  truncate,
} from "./provider-fake.js";

/**
 * A fake OpenAI Images API (local HTTP) for `POST /v1/images/generations` (JSON) and
 * `POST /v1/images/edits` (multipart, `image[]` or `image`), as in
 * https://platform.openai.com/docs/api-reference/images: `Authorization: Bearer` (401
 * `invalid_api_key`), GPT image model parameters validated (400 `invalid_value` /
 * `unknown_parameter` with `param`), the image returned as `data[0].b64_json` with `usage`, the
 * `x-request-id` and `x-ratelimit-*` headers; errors in OpenAI's `{"error": {message, type,
 * param, code}}` shape: 429 `rate_limit_exceeded` with `retry-after`, 429 `insufficient_quota`,
 * 400 `moderation_blocked`, 500/503 `server_error`.
 */
export interface FakeOpenAI extends ProviderFake {
  /** Every accepted request: the endpoint, its parameters, and the images of an edit. */
  requests: {
    endpoint: "generations" | "edits";
    params: Record<string, unknown>;
    images: { field: string; type: string; width: number; height: number }[];
  }[];
}

const FAULTS: ReadonlySet<FakeFault> = new Set([
  "unauthorized",
  "insufficient_credits",
  "content_policy",
  "rate_limited",
  "server_error",
  "unavailable",
  "hang",
  "html_page",
  "non_image",
  "truncated",
  "wrong_size",
]);
const STANDARD_SIZES = new Set(["1024x1024", "1536x1024", "1024x1536", "auto"]);
const QUALITIES = new Set(["low", "medium", "high", "auto"]);
const OUTPUT_FORMATS = new Set(["png", "jpeg", "webp"]);
const BACKGROUNDS = new Set(["transparent", "opaque", "auto"]);
const IMAGE_TYPES = new Set(["image/png", "image/jpeg", "image/webp"]);
const REQUESTS_PER_MINUTE = 5;

function openAIError(
  response: ServerResponse,
  status: number,
  error: { message: string; type: string; param?: string | null; code?: string | null },
  headers: Record<string, string> = {},
): void {
  sendJson(
    response,
    status,
    {
      error: {
        message: error.message,
        type: error.type,
        param: error.param ?? null,
        code: error.code ?? null,
      },
    },
    { "x-request-id": `req_${randomUUID().replaceAll("-", "")}`, ...headers },
  );
}

/** Checks a size for the model: the three standard ones, or any valid WxH for gpt-image-2. */
function sizeProblem(model: string, size: string): string | undefined {
  if (STANDARD_SIZES.has(size)) return undefined;
  const match = /^(\d+)x(\d+)$/.exec(size);
  if (!model.startsWith("gpt-image-2") || !match) {
    return `Invalid value: '${size}'. Supported values are: '1024x1024', '1024x1536', '1536x1024', and 'auto'.`;
  }
  const width = Number(match[1]);
  const height = Number(match[2]);
  if (width % 16 !== 0 || height % 16 !== 0)
    return `Invalid size '${size}': width and height must be divisible by 16.`;
  if (width / height > 3 || height / width > 3)
    return `Invalid size '${size}': aspect ratio must be between 1:3 and 3:1.`;
  if (Math.max(width, height) > 3840 || width * height > 3840 * 2160)
    return `Invalid size '${size}': maximum is 3840x2160.`;
  return undefined;
}

export async function startFakeOpenAI(options: { apiKey?: string } = {}): Promise<FakeOpenAI> {
  const apiKey = options.apiKey ?? `sk-proj-${randomUUID().replaceAll("-", "")}`;
  const script = new FaultScript();
  const calls: FakeCall[] = [];
  const requests: FakeOpenAI["requests"] = [];
  let remaining = REQUESTS_PER_MINUTE;

  const rateHeaders = (): Record<string, string> => ({
    "x-ratelimit-limit-requests": String(REQUESTS_PER_MINUTE),
    "x-ratelimit-remaining-requests": String(Math.max(0, remaining)),
    "x-ratelimit-reset-requests": "12s",
  });

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const path = new URL(request.url ?? "/", "http://fake").pathname;
    calls.push({ method: request.method ?? "GET", path });
    const body = await readBody(request);
    const endpoint =
      path === "/v1/images/generations"
        ? "generations"
        : path === "/v1/images/edits"
          ? "edits"
          : undefined;
    if (!endpoint || request.method !== "POST") {
      openAIError(response, 404, {
        message: `Invalid URL (${request.method} ${path})`,
        type: "invalid_request_error",
      });
      return;
    }
    const authorization = request.headers.authorization ?? "";
    if (authorization !== `Bearer ${apiKey}`) {
      openAIError(response, 401, {
        message: `Incorrect API key provided: ${authorization.replace(/^Bearer\s+/, "").slice(0, 8)}****. You can find your API key at https://platform.openai.com/account/api-keys.`,
        type: "invalid_request_error",
        code: "invalid_api_key",
      });
      return;
    }
    const invalid = (param: string, message: string, code = "invalid_value") =>
      openAIError(response, 400, { message, type: "invalid_request_error", param, code });

    let params: Record<string, unknown>;
    const images: FakeOpenAI["requests"][number]["images"] = [];
    if (endpoint === "generations") {
      if (!String(request.headers["content-type"] ?? "").startsWith("application/json")) {
        invalid("body", "Request body must be JSON.", "invalid_request");
        return;
      }
      try {
        params = JSON.parse(body.toString("utf8")) as Record<string, unknown>;
      } catch {
        invalid("body", "We could not parse the JSON body of your request.", "invalid_json");
        return;
      }
    } else {
      const form = parseMultipart(body, String(request.headers["content-type"] ?? ""));
      if (!form) {
        invalid("body", "Request body must be multipart/form-data.", "invalid_request");
        return;
      }
      params = Object.fromEntries([...form.fields].map(([name, values]) => [name, values[0]]));
      const files = [
        ...(form.files.get("image") ?? []).map((file) => ({ field: "image", file })),
        ...(form.files.get("image[]") ?? []).map((file) => ({ field: "image[]", file })),
      ];
      if (files.length === 0) {
        invalid("image", "Missing required parameter: 'image'.", "missing_required_parameter");
        return;
      }
      if (files.length > 16) {
        invalid("image", "Too many images: at most 16 are supported.");
        return;
      }
      for (const { field, file } of files) {
        if (!IMAGE_TYPES.has(file.type)) {
          invalid(
            field,
            `Invalid file '${file.filename}': unsupported mimetype ('${file.type}'). Supported file formats are 'image/jpeg', 'image/png', and 'image/webp'.`,
            "unsupported_file_mimetype",
          );
          return;
        }
        try {
          const metadata = await sharp(file.bytes).metadata();
          await sharp(file.bytes, { failOn: "truncated" }).raw().toBuffer();
          images.push({
            field,
            type: file.type,
            width: metadata.width ?? 0,
            height: metadata.height ?? 0,
          });
        } catch {
          invalid(
            field,
            `Invalid image file '${file.filename}': the image could not be decoded.`,
            "invalid_image_file",
          );
          return;
        }
      }
    }

    const model = params.model;
    if (typeof model !== "string" || !/^(gpt-image-|chatgpt-image-)/.test(model)) {
      invalid(
        "model",
        `Invalid value for 'model': '${String(model)}' is not a GPT image model this fake serves.`,
      );
      return;
    }
    if (typeof params.prompt !== "string" || params.prompt.length === 0) {
      invalid("prompt", "Missing required parameter: 'prompt'.", "missing_required_parameter");
      return;
    }
    if (params.prompt.length > 32_000) {
      invalid(
        "prompt",
        "Invalid 'prompt': string too long. Expected a string with maximum length 32000.",
        "string_above_max_length",
      );
      return;
    }
    if ("response_format" in params) {
      invalid("response_format", "Unknown parameter: 'response_format'.", "unknown_parameter");
      return;
    }
    const n = params.n === undefined ? 1 : Number(params.n);
    if (!Number.isInteger(n) || n < 1 || n > 10) {
      invalid(
        "n",
        `Invalid value for 'n': ${String(params.n)}. Expected an integer between 1 and 10.`,
      );
      return;
    }
    const size = String(params.size ?? "auto");
    const problem = sizeProblem(model, size);
    if (problem) {
      invalid("size", problem);
      return;
    }
    for (const [param, allowed] of [
      ["quality", QUALITIES],
      ["output_format", OUTPUT_FORMATS],
      ["background", BACKGROUNDS],
    ] as const) {
      if (params[param] !== undefined && !allowed.has(String(params[param]))) {
        invalid(
          param,
          `Invalid value: '${String(params[param])}'. Supported values are: ${[...allowed].map((value) => `'${value}'`).join(", ")}.`,
        );
        return;
      }
    }
    requests.push({ endpoint, params, images });

    const [width, height] =
      size === "auto" ? [1024, 1024] : (size.split("x").map(Number) as [number, number]);
    const format = (params.output_format as "png" | "jpeg" | "webp" | undefined) ?? "png";
    const requestId = `req_${randomUUID().replaceAll("-", "")}`;
    const headers = { "x-request-id": requestId, "openai-processing-ms": "1234", ...rateHeaders() };
    const answer = (b64: string) =>
      sendJson(
        response,
        200,
        {
          created: Math.floor(Date.now() / 1000),
          background: "opaque",
          data: [{ b64_json: b64 }],
          output_format: format,
          quality: params.quality ?? "auto",
          size,
          usage: {
            input_tokens: 50 + images.length * 323,
            input_tokens_details: { image_tokens: images.length * 323, text_tokens: 50 },
            output_tokens: 4160,
            total_tokens: 4210 + images.length * 323,
          },
        },
        headers,
      );

    const scripted = script.take();
    remaining--;
    if (scripted) {
      const { fault, options: faultOptions } = scripted;
      switch (fault) {
        case "unauthorized":
          openAIError(response, 401, {
            message:
              "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
            type: "invalid_request_error",
            code: "invalid_api_key",
          });
          return;
        case "insufficient_credits":
          openAIError(response, 429, {
            message: "You exceeded your current quota, please check your plan and billing details.",
            type: "insufficient_quota",
            code: "insufficient_quota",
          });
          return;
        case "content_policy":
          openAIError(response, 400, {
            message:
              "Your request was rejected by the safety system. If you believe this is an error, contact us at help.openai.com and include the request ID.",
            type: "image_generation_user_error",
            code: "moderation_blocked",
          });
          return;
        case "rate_limited":
          openAIError(
            response,
            429,
            {
              message: `Rate limit reached for ${model} in organization org-fake on images per min (IPM): Limit ${REQUESTS_PER_MINUTE}, Used ${REQUESTS_PER_MINUTE}, Requested 1.`,
              type: "requests",
              code: "rate_limit_exceeded",
            },
            {
              ...rateHeaders(),
              "x-ratelimit-remaining-requests": "0",
              "retry-after": String(faultOptions.retryAfterSeconds ?? 2),
            },
          );
          return;
        case "server_error":
          openAIError(response, 500, {
            message: "The server had an error while processing your request. Sorry about that!",
            type: "server_error",
          });
          return;
        case "unavailable":
          openAIError(response, 503, {
            message: "The engine is currently overloaded, please try again later.",
            type: "server_error",
          });
          return;
        case "non_image":
          answer(
            Buffer.from("this is not an image, it only sits where one should\n").toString("base64"),
          );
          return;
        case "truncated":
          answer(truncate(await drawFakeImage(width, height, format)).toString("base64"));
          return;
        case "wrong_size":
          answer(
            (await drawFakeImage(Math.round(width / 2), Math.round(height / 2), format)).toString(
              "base64",
            ),
          );
          return;
        default:
          if (await answerImageFault(response, fault, { width, height, format })) return;
          throw new Error(`OpenAI fake cannot script ${fault}`);
      }
    }
    answer(
      (
        await drawFakeImage(width, height, format, { alpha: params.background === "transparent" })
      ).toString("base64"),
    );
  }

  const server = await listenFake(handle);
  return {
    url: server.url,
    apiKey,
    calls,
    requests,
    faults: FAULTS,
    failNext: (fault, count = 1, faultOptions = {}) => {
      if (!FAULTS.has(fault)) throw new Error(`OpenAI has no documented ${fault} answer`);
      script.push(fault, count, faultOptions);
    },
    close: server.close,
  };
}
