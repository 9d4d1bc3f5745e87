import { createFalClient } from "@fal-ai/client";
import { z } from "zod";
import { ShotlistError } from "../../domain/errors.js";
import { DEFAULT_MAX_PIXELS } from "../../pipeline/decode.js";
import { decodeHandle, encodeHandle } from "../async-handle.js";
import {
  asPollFailure,
  type CallDeadline,
  failureOfCall,
  runToEnd,
  withDeadline,
} from "../exchange.js";
import { outputOfJob } from "../output-image.js";
import {
  checkApiKey,
  checkOutputFits,
  checkTimeout,
  checkWebhookUrl,
  type HttpAnswer,
  normaliseBaseUrl,
  type PriceOptions,
  priceTable,
} from "../paid-call.js";
import {
  type AsyncPaidProvider,
  type CallContext,
  type Operation,
  type PaidCallContext,
  type PollResult,
  ProviderCallError,
  type ProviderLimits,
  type ProviderRequest,
  type ProviderResult,
} from "../provider.js";
import { checkImageInputs, firstReferenceDataUri, operationsOf } from "../reference-input.js";
import type { FalJsonWebKey } from "./webhook.js";

export const FAL_QUEUE_URL = "https://queue.fal.run";
export const FAL_JWKS_URL = "https://rest.alpha.fal.ai/.well-known/jwks.json";

/** One fal endpoint as a recipe names it (`recipe.model`). */
export interface FalModelConfig {
  /** The endpoint id, e.g. `"fal-ai/flux/dev"`; default the model name itself. */
  endpoint?: string;
  /**
   * Version label recorded in recipes (fal endpoints are not versioned by id); default
   * `"<endpoint>@unversioned"`. Change it when the endpoint's behaviour changes, so recipes do.
   */
  version?: string;
  /** What the endpoint does; default `["generate"]`. */
  operations?: Operation[];
  /** The input that takes the first reference image (e.g. `"image_url"`); default none. */
  imageInput?: string;
  /** Fixed inputs of this endpoint, sent under ours (e.g. `{ "num_inference_steps": 28 }`). */
  input?: Record<string, unknown>;
}

/** Prices: `prices` per model name and/or `perCallMicros` (micro-dollars per call). */
export interface FalProviderOptions extends PriceOptions {
  /** Registry name; default `"fal"`. */
  name?: string;
  /** Queue API base URL; default `https://queue.fal.run`. Tests point it at the fake. */
  baseUrl?: string;
  /** API key (`key_id:key_secret`), sent as `Authorization: Key …`. Security: a secret. */
  apiKey: string;
  /** Endpoints by the name recipes use. */
  models: Readonly<Record<string, FalModelConfig>>;
  /** Deadline of each step (submit; status; result with its download; JWKS), ms; default 30 000. */
  timeoutMs?: number;
  /** Pause between polls inside `run()`, ms; default 1 000. */
  pollIntervalMs?: number;
  /** Public URL fal POSTs the finished request to (`fal_webhook`); unset: polling only. */
  webhookUrl?: string;
  /** Where fal publishes its webhook signing keys; default `https://rest.alpha.fal.ai/.well-known/jwks.json`. */
  jwksUrl?: string;
  /** Overrides of the declared limits (defaults: 2048 px, jpeg/png/webp, 600 requests a minute). */
  limits?: Partial<ProviderLimits>;
  /** Largest output image decoded, in pixels; default 40 000 000 (decompression-bomb guard). */
  maxPixels?: number;
  /** fetch implementation; default the global one. */
  fetch?: typeof fetch;
  /**
   * Fetches the output files the provider's answer names (URLs from outside: SSRF). The registry
   * passes the guarded fetch of src/intake/address-guard.ts, which refuses loopback, private and
   * metadata addresses unless SHOTLIST_ALLOW_PRIVATE_NETWORKS; a refused URL is `bad_output`.
   * Default `fetch` above (unguarded: for callers that trust the provider's URLs, e.g. tests).
   */
  fetchOutput?: typeof fetch;
}

export interface FalProvider extends AsyncPaidProvider {
  /** fal's webhook signing keys (JWKS), which `verifyFalWebhook` needs; cache them for a day. */
  webhookKeys(context: CallContext): Promise<FalJsonWebKey[]>;
}

const submitSchema = z.object({ request_id: z.string().min(1) });
const statusSchema = z.object({
  status: z.enum(["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]),
  error: z.string().nullish(),
  error_type: z.string().nullish(),
});
const resultSchema = z.object({
  images: z.array(z.object({ url: z.string(), content_type: z.string().nullish() })).min(1),
  has_nsfw_concepts: z.array(z.boolean()).nullish(),
});

/** fal's "model error" body (https://fal.ai/docs/documentation/model-apis/errors). */
function detailTypes(json: unknown): string[] {
  const detail = (json as { detail?: unknown } | undefined)?.detail;
  if (!Array.isArray(detail)) return [];
  return detail.map((item) => String((item as { type?: unknown })?.type ?? ""));
}

function detailText(json: unknown): string | undefined {
  const detail = (json as { detail?: unknown } | undefined)?.detail;
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail
      .map((item) => {
        const { loc, msg } = item as { loc?: unknown; msg?: unknown };
        return `${Array.isArray(loc) ? loc.join(".") : "?"}: ${String(msg)}`;
      })
      .join("; ");
  }
  return undefined;
}

/**
 * fal's own signals first: a 422 whose detail has `content_policy_violation` is a refusal, a 403
 * "Exhausted balance" is an empty account (fal locks the user rather than answering 402), and
 * `X-Fal-Retryable: false` makes a 5xx permanent.
 */
function refineFal(response: HttpAnswer, json: unknown) {
  const detail = detailText(json);
  if (detailTypes(json).includes("content_policy_violation")) {
    return { kind: "content_policy" as const, ...(detail ? { detail } : {}) };
  }
  if (response.status === 403 && /exhausted balance|top up|insufficient/i.test(detail ?? "")) {
    return { kind: "insufficient_credits" as const, detail: detail ?? "" };
  }
  if (response.status >= 500 && response.headers.get("x-fal-retryable") === "false") {
    return { kind: "invalid_request" as const, ...(detail ? { detail } : {}) };
  }
  return detail ? { detail } : undefined;
}

/**
 * fal (https://fal.ai/docs/documentation/model-apis/inference/queue) through the official
 * `@fal-ai/client`: the queue API — `submit` posts to `{base}/{endpoint}` and returns the
 * request id, `poll` reads `…/requests/{id}/status` and, once COMPLETED, `…/requests/{id}` —
 * with `fal_webhook` when Shotlist is reachable. The client's URLs are rewritten from
 * queue.fal.run to `baseUrl` by its `requestMiddleware`, and its fetch is ours (one exchange per
 * call, see exchange.ts).
 */
export function createFalProvider(options: FalProviderOptions): FalProvider {
  const name = options.name ?? "fal";
  const baseUrl = normaliseBaseUrl(name, options.baseUrl ?? FAL_QUEUE_URL);
  const timeoutMs = options.timeoutMs ?? 30_000;
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  checkApiKey(name, options.apiKey);
  checkTimeout(name, timeoutMs);
  checkImageInputs(name, options.models);
  const pollIntervalMs = options.pollIntervalMs ?? 1_000;
  const baseFetch = options.fetch ?? fetch;
  const fetchOutput = options.fetchOutput ?? baseFetch;
  for (const [model, config] of Object.entries(options.models)) {
    if (model.includes("|") || !/^[\w.-]+\/[\w./-]+$/.test(config.endpoint ?? model)) {
      throw new ShotlistError(
        "invalid_config",
        `${name}: model "${model}" needs an endpoint id like "fal-ai/flux/dev"`,
      );
    }
  }
  checkWebhookUrl(name, options.webhookUrl);
  const priceOf = priceTable(name, Object.keys(options.models), options);
  const operations = operationsOf(options.models);
  const limits: ProviderLimits = {
    maxSide: 2048,
    formats: ["jpeg", "png", "webp"],
    requestsPerMinute: 600,
    ...options.limits,
  };

  const client = (deadline: CallDeadline) =>
    createFalClient({
      credentials: options.apiKey,
      fetch: deadline.fetch,
      suppressLocalCredentialsWarning: true,
      requestMiddleware: async (request) => ({
        ...request,
        url: request.url.startsWith(FAL_QUEUE_URL)
          ? `${baseUrl}${request.url.slice(FAL_QUEUE_URL.length)}`
          : request.url,
      }),
    });

  const modelOf = (model: string): FalModelConfig & { endpoint: string } => {
    const config = options.models[model];
    if (!config) {
      throw new ProviderCallError(name, "invalid_request", `model "${model}" is not configured`);
    }
    return { ...config, endpoint: config.endpoint ?? model };
  };

  const versionOf = (model: string): string => {
    const config = options.models[model];
    if (!config) {
      throw new ShotlistError("invalid_config", `${name}: model "${model}" is not configured`);
    }
    return config.version ?? `${config.endpoint ?? model}@unversioned`;
  };

  async function inputOf(
    request: ProviderRequest,
    model: FalModelConfig,
  ): Promise<Record<string, unknown>> {
    const { recipe } = request;
    const { output } = recipe;
    checkOutputFits(name, output, limits);
    return {
      ...model.input,
      ...(recipe.prompt === null ? {} : { prompt: recipe.prompt }),
      seed: recipe.seed,
      image_size: { width: output.width, height: output.height },
      num_images: 1,
      output_format: output.format,
      enable_safety_checker: true,
      ...(model.imageInput
        ? { [model.imageInput]: await firstReferenceDataUri(name, request, maxPixels) }
        : {}),
    };
  }

  async function submit(
    request: ProviderRequest,
    context: PaidCallContext,
  ): Promise<{ externalId: string }> {
    const model = modelOf(request.recipe.model);
    if (request.recipe.modelVersion !== versionOf(request.recipe.model)) {
      throw new ProviderCallError(
        name,
        "invalid_request",
        `recipe pins ${request.recipe.modelVersion}, configuration runs ${versionOf(request.recipe.model)}`,
      );
    }
    const input = await inputOf(request, model);
    return withDeadline(context, timeoutMs, baseFetch, async (deadline) => {
      let answer: unknown;
      try {
        answer = await client(deadline).queue.submit(model.endpoint, {
          input,
          ...(options.webhookUrl ? { webhookUrl: options.webhookUrl } : {}),
          abortSignal: deadline.signal,
        });
      } catch (error) {
        throw failureOfCall(name, deadline, context, error, refineFal);
      }
      const parsed = submitSchema.safeParse(answer);
      if (!parsed.success) {
        throw new ProviderCallError(name, "bad_output", "the submit answer has no request_id");
      }
      return {
        externalId: encodeHandle({
          providerId: parsed.data.request_id,
          model: request.recipe.model,
          output: request.recipe.output,
          recipeHash: request.recipeHash,
          composite: model.imageInput !== undefined,
        }),
      };
    });
  }

  async function poll(externalId: string, context: CallContext): Promise<PollResult> {
    const handle = decodeHandle(externalId);
    if (!handle) {
      throw new ProviderCallError(name, "invalid_request", `not a fal external id: ${externalId}`);
    }
    const model = modelOf(handle.model);
    const status = await withDeadline(context, timeoutMs, baseFetch, async (deadline) => {
      let answer: unknown;
      try {
        answer = await client(deadline).queue.status(model.endpoint, {
          requestId: handle.providerId,
          logs: false,
          abortSignal: deadline.signal,
        });
      } catch (error) {
        throw asPollFailure(name, failureOfCall(name, deadline, context, error, refineFal));
      }
      const parsed = statusSchema.safeParse(answer);
      if (!parsed.success) {
        throw asPollFailure(
          name,
          new ProviderCallError(name, "bad_output", "the status answer has no known status"),
        );
      }
      return parsed.data;
    });
    if (status.status !== "COMPLETED") return { status: "pending" };
    return withDeadline(context, timeoutMs, baseFetch, async (deadline) => {
      let answer: unknown;
      try {
        answer = await client(deadline).queue.result(model.endpoint, {
          requestId: handle.providerId,
          abortSignal: deadline.signal,
        });
      } catch (error) {
        const failure = failureOfCall(name, deadline, context, error, refineFal);
        // The result of a request that failed is its stored error answer (a 422 from the model,
        // a 5xx with X-Fal-Error-Type from the platform): the request's own end, not this call's.
        // 401/403/429 and an untyped 5xx are about this call, so polling again may work.
        const held = deadline.held();
        if (
          failure instanceof ProviderCallError &&
          held &&
          "response" in held &&
          isRequestOutcome(held.response)
        ) {
          return { status: "failed", error: failure };
        }
        throw asPollFailure(name, failure);
      }
      const data = (answer as { data?: unknown } | undefined)?.data;
      if (typeof data !== "object" || data === null) {
        // The client hands back text for a 2xx that is not JSON (a portal's page).
        throw asPollFailure(
          name,
          new ProviderCallError(name, "bad_output", "the result answer is not JSON"),
        );
      }
      const result = resultSchema.safeParse(data);
      if (!result.success) {
        throw new ProviderCallError(name, "bad_output", "the result has no images");
      }
      if (result.data.has_nsfw_concepts?.[0] === true) {
        // fal's safety checker blacks the image out and says so here.
        return {
          status: "failed",
          error: new ProviderCallError(
            name,
            "content_policy",
            "the safety checker flagged the image",
          ),
        };
      }
      // Thrown, not a failed poll: the request succeeded and was billed. A bad image
      // (bad_output) is its final answer; a failed download (unavailable) may heal.
      const labelled = await outputOfJob(name, result.data.images[0]!.url, handle, {
        deadline,
        fetch: fetchOutput,
        maxPixels,
      });
      const done: ProviderResult = {
        ...labelled,
        costMicros: priceOf(handle.model),
        providerRequestId: handle.providerId,
      };
      return { status: "succeeded", result: done };
    });
  }

  return {
    name,
    billing: "paid",
    mode: "async",
    operations,
    limits,
    modelVersion: versionOf,
    estimateCostMicros(request: ProviderRequest): number {
      return priceOf(request.recipe.model);
    },
    submit,
    poll,
    run: (request: ProviderRequest, context: CallContext) =>
      runToEnd({ submit, poll }, request, context, pollIntervalMs),
    async webhookKeys(context: CallContext): Promise<FalJsonWebKey[]> {
      const jwksUrl = options.jwksUrl ?? FAL_JWKS_URL;
      return withDeadline(context, timeoutMs, baseFetch, async (deadline) => {
        let answer: unknown;
        try {
          const response = await deadline.fetch(jwksUrl, { signal: deadline.signal });
          answer = await response.json();
        } catch (error) {
          throw failureOfCall(name, deadline, context, error);
        }
        const parsed = z
          .object({ keys: z.array(z.object({ kty: z.string(), crv: z.string(), x: z.string() })) })
          .safeParse(answer);
        if (!parsed.success || parsed.data.keys.length === 0) {
          throw new ProviderCallError(name, "bad_output", "the JWKS answer has no keys");
        }
        return parsed.data.keys;
      });
    },
  };
}

function isRequestOutcome(response: HttpAnswer): boolean {
  if ([401, 403, 404, 429].includes(response.status)) return false;
  if (response.status >= 500) return response.headers.get("x-fal-error-type") !== null;
  return true;
}
