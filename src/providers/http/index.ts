import { randomUUID } from "node:crypto";
import sharp from "sharp";
import type { OutputFormat } from "../../domain/recipe.js";
import { kindForStatus, retryAfterMs } from "../paid-call.js";
import {
  type AsyncPaidProvider,
  type CallContext,
  type PaidCallContext,
  type PaidProvider,
  type PollResult,
  ProviderCallError,
  type ProviderFailureKind,
  type ProviderLimits,
  type ProviderRequest,
  type ProviderResult,
  type SyncPaidProvider,
} from "../provider.js";

/**
 * The generic `http` adapter: a minimal, documented image-provider protocol (docs/providers.md)
 * a team implements to plug its own in-house generation service into Shotlist.
 *
 * Sync:  POST {base}/v1/images → 200 image bytes.
 * Async: POST {base}/v1/jobs → 201 {id, status}; GET {base}/v1/jobs/{id} → {id, status, error?};
 *        GET {base}/v1/jobs/{id}/output → image bytes.
 * Every POST carries `Authorization: Bearer <key>` and `Idempotency-Key: <ledger call id>`.
 */
export interface HttpProviderOptions {
  /** The name chain links use, e.g. "studio-api". */
  name: string;
  /** e.g. "https://images.example.com"; no trailing path beyond the service root. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <apiKey>`. Security: comes from the environment, never a file. */
  apiKey: string;
  mode: "sync" | "async";
  /** Price of one accepted generation, in micro-units of the account currency. */
  perCallMicros: number;
  /** Optional webhook URL sent with async jobs; the server POSTs the final job JSON there. */
  webhookUrl?: string;
  /** Largest side, formats and documented rate; defaults 4096, jpeg/png/webp, 60/min. */
  limits?: Partial<ProviderLimits>;
  /** Largest image answer accepted, in bytes; default 50 MB. */
  maxOutputBytes?: number;
}

const CONTENT_TYPES: Readonly<Record<string, OutputFormat>> = {
  "image/jpeg": "jpeg",
  "image/png": "png",
  "image/webp": "webp",
  "image/avif": "avif",
};

const SHARP_FORMATS: Readonly<Record<string, OutputFormat>> = {
  jpeg: "jpeg",
  png: "png",
  webp: "webp",
  heif: "avif",
};

/**
 * Maps an HTTP error answer of the protocol to a failure kind (docs/providers.md "Errors"): the
 * error code first, then the protocol's own statuses (422 a refusal, 504 a timeout), then the
 * status as every paid adapter reads it.
 */
export function failureKindOf(status: number, errorCode: string | undefined): ProviderFailureKind {
  if (errorCode === "content_policy") return "content_policy";
  if (errorCode === "insufficient_credits") return "insufficient_credits";
  if (status === 422) return "content_policy";
  if (status === 504) return "timeout";
  return kindForStatus(status);
}

export function createHttpProvider(options: HttpProviderOptions): PaidProvider {
  const base = options.baseUrl.replace(/\/+$/, "");
  const name = options.name;
  const maxOutputBytes = options.maxOutputBytes ?? 50 * 1024 * 1024;
  const limits: ProviderLimits = {
    maxSide: options.limits?.maxSide ?? 4096,
    formats: options.limits?.formats ?? ["jpeg", "png", "webp"],
    requestsPerMinute: options.limits?.requestsPerMinute ?? 60,
  };
  const authorization = `Bearer ${options.apiKey}`;

  async function send(
    url: string,
    init: { method: "GET" | "POST"; body?: unknown; idempotencyKey?: string },
    signal: AbortSignal,
  ): Promise<Response> {
    const headers: Record<string, string> = { authorization };
    if (init.body !== undefined) headers["content-type"] = "application/json";
    if (init.idempotencyKey) headers["idempotency-key"] = init.idempotencyKey;
    try {
      return await fetch(url, {
        method: init.method,
        headers,
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
        signal,
      });
    } catch (error) {
      // An abort is the caller's (timeout policy or lease loss): rethrow it as it is.
      if (signal.aborted) throw signal.reason ?? error;
      throw new ProviderCallError(
        name,
        "unavailable",
        `${init.method} ${url}: ${(error as Error).message}`,
        {
          cause: error,
        },
      );
    }
  }

  async function failureOf(response: Response, what: string): Promise<ProviderCallError> {
    const text = await response.text().catch(() => "");
    let code: string | undefined;
    let message = text.slice(0, 300);
    try {
      const parsed = JSON.parse(text) as { error?: { code?: unknown; message?: unknown } };
      if (typeof parsed.error?.code === "string") code = parsed.error.code;
      if (typeof parsed.error?.message === "string") message = parsed.error.message;
    } catch {
      // Not the protocol's error JSON (a proxy's HTML page): the status alone decides.
    }
    const kind = failureKindOf(response.status, code);
    const retryAfter = retryAfterMs(response.headers);
    return new ProviderCallError(
      name,
      kind,
      `${what} answered ${response.status}${code ? ` ${code}` : ""}: ${message || response.statusText}`,
      {
        httpStatus: response.status,
        ...(retryAfter === undefined ? {} : { retryAfterMs: retryAfter }),
      },
    );
  }

  /** Reads an image answer; anything that is not a whole, decodable image is `bad_output`. */
  async function imageOf(response: Response, what: string): Promise<ProviderResult> {
    const contentType = (response.headers.get("content-type") ?? "").split(";")[0]?.trim() ?? "";
    const declared = CONTENT_TYPES[contentType.toLowerCase()];
    let bytes: Buffer;
    try {
      bytes = Buffer.from(await response.arrayBuffer());
    } catch (error) {
      throw new ProviderCallError(name, "bad_output", `${what}: the body was cut off`, {
        cause: error,
      });
    }
    if (!declared) {
      throw new ProviderCallError(
        name,
        "bad_output",
        `${what} answered Content-Type "${contentType || "none"}", not an image`,
        { httpStatus: response.status },
      );
    }
    if (bytes.length === 0 || bytes.length > maxOutputBytes) {
      throw new ProviderCallError(name, "bad_output", `${what}: image of ${bytes.length} bytes`);
    }
    let width: number;
    let height: number;
    let format: OutputFormat | undefined;
    try {
      // A full decode with failOn "truncated": a header that parses is not a whole image.
      const image = sharp(bytes, { failOn: "truncated", limitInputPixels: limits.maxSide ** 2 });
      const metadata = await image.metadata();
      await image.raw().toBuffer();
      width = metadata.width ?? 0;
      height = metadata.height ?? 0;
      format = metadata.format ? SHARP_FORMATS[metadata.format] : undefined;
    } catch (error) {
      throw new ProviderCallError(
        name,
        "bad_output",
        `${what}: the image does not decode (${(error as Error).message})`,
        { cause: error },
      );
    }
    if (!format || format !== declared) {
      throw new ProviderCallError(
        name,
        "bad_output",
        `${what}: Content-Type says ${declared} but the bytes are ${format ?? "unknown"}`,
      );
    }
    const requestId = response.headers.get("x-request-id");
    return {
      bytes,
      format,
      width,
      height,
      costMicros: options.perCallMicros,
      ...(requestId ? { providerRequestId: requestId } : {}),
    };
  }

  function bodyOf(request: ProviderRequest): Record<string, unknown> {
    const { recipe } = request;
    return {
      model: recipe.model,
      prompt: recipe.prompt,
      seed: recipe.seed,
      width: recipe.output.width,
      height: recipe.output.height,
      format: recipe.output.format,
      images: recipe.references.map((sha256) => request.references.get(sha256)?.toString("base64")),
    };
  }

  const common = {
    name,
    billing: "paid" as const,
    operations: ["generate", "edit"] as const,
    limits,
    modelVersion: (model: string) => `${name}/${model}`,
    estimateCostMicros: (_request: ProviderRequest) => options.perCallMicros,
  };

  if (options.mode === "sync") {
    const provider: SyncPaidProvider = {
      ...common,
      mode: "sync",
      async run(request: ProviderRequest, context: PaidCallContext): Promise<ProviderResult> {
        const url = `${base}/v1/images`;
        const response = await send(
          url,
          { method: "POST", body: bodyOf(request), idempotencyKey: context.callId },
          context.signal,
        );
        if (response.status !== 200) throw await failureOf(response, `POST ${url}`);
        return imageOf(response, `POST ${url}`);
      },
    };
    return provider;
  }

  const provider: AsyncPaidProvider = {
    ...common,
    mode: "async",
    async submit(request, context) {
      const url = `${base}/v1/jobs`;
      const body = {
        ...bodyOf(request),
        ...(options.webhookUrl ? { webhook: options.webhookUrl } : {}),
      };
      const response = await send(
        url,
        { method: "POST", body, idempotencyKey: context.callId },
        context.signal,
      );
      if (response.status !== 201 && response.status !== 200) {
        throw await failureOf(response, `POST ${url}`);
      }
      const job = (await response.json().catch(() => undefined)) as { id?: unknown } | undefined;
      if (typeof job?.id !== "string" || job.id.length === 0) {
        throw new ProviderCallError(name, "bad_output", `POST ${url} answered no job id`);
      }
      return { externalId: job.id };
    },
    async poll(externalId: string, context: CallContext): Promise<PollResult> {
      const url = `${base}/v1/jobs/${encodeURIComponent(externalId)}`;
      const response = await send(url, { method: "GET" }, context.signal);
      if (response.status !== 200) throw await failureOf(response, `GET ${url}`);
      const job = (await response.json().catch(() => undefined)) as
        | { status?: unknown; error?: { code?: unknown; message?: unknown } }
        | undefined;
      switch (job?.status) {
        case "queued":
        case "running":
          return { status: "pending" };
        case "failed": {
          const code = typeof job.error?.code === "string" ? job.error.code : undefined;
          const message = typeof job.error?.message === "string" ? job.error.message : "failed";
          const kind: ProviderFailureKind =
            code === "content_policy" || code === "invalid_request" ? code : "unavailable";
          return {
            status: "failed",
            error: new ProviderCallError(name, kind, `job ${externalId} failed: ${message}`),
          };
        }
        case "succeeded": {
          const outputUrl = `${url}/output`;
          const output = await send(outputUrl, { method: "GET" }, context.signal);
          if (output.status !== 200) throw await failureOf(output, `GET ${outputUrl}`);
          return { status: "succeeded", result: await imageOf(output, `GET ${outputUrl}`) };
        }
        default:
          throw new ProviderCallError(
            name,
            "bad_output",
            `GET ${url} answered an unknown status ${JSON.stringify(job?.status)}`,
          );
      }
    },
    async run(request, context) {
      // For callers without a ledger: submit, then poll to the end.
      const { externalId } = await provider.submit(request, { ...context, callId: randomUUID() });
      for (;;) {
        const polled = await provider.poll(externalId, context);
        if (polled.status === "succeeded") return polled.result;
        if (polled.status === "failed") throw polled.error;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    },
  };
  return provider;
}
