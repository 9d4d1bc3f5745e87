import Replicate from "replicate";
import { z } from "zod";
import { ShotlistError } from "../../domain/errors.js";
import { DEFAULT_MAX_PIXELS } from "../../pipeline/decode.js";
import { type AsyncCallHandle, decodeHandle, encodeHandle } from "../async-handle.js";
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

export const REPLICATE_API_URL = "https://api.replicate.com/v1";

/** One Replicate model as a recipe names it (`recipe.model`), pinned to a version. */
export interface ReplicateModelConfig {
  /** The 64-hex model version id predictions run (Replicate's `version`); recorded in recipes. */
  version: string;
  /** What the model does; default `["generate"]`. */
  operations?: Operation[];
  /**
   * The model's input that takes the recipe's first reference image (e.g. `"image"`,
   * `"input_image"` for FLUX Kontext); default none. Required for edit / remove-background models.
   */
  imageInput?: string;
  /** Fixed inputs of this model, sent under ours (e.g. `{ "aspect_ratio": "custom" }`). */
  input?: Record<string, unknown>;
}

/** Prices: `prices` per model name and/or `perCallMicros` (micro-dollars per call). */
export interface ReplicateProviderOptions extends PriceOptions {
  /** Registry name; default `"replicate"`. */
  name?: string;
  /** API base URL; default `https://api.replicate.com/v1`. Tests point it at the fake. */
  baseUrl?: string;
  /** API token (`r8_…`), sent as `Authorization: Bearer`. Security: a secret; never logged. */
  apiKey: string;
  /** Models by the name recipes use. */
  models: Readonly<Record<string, ReplicateModelConfig>>;
  /** Deadline of each call (`submit`; a `poll` with its output download), ms; default 30 000. */
  timeoutMs?: number;
  /** Pause between polls inside `run()` (callers with a ledger poll on their own), ms; default 1 000. */
  pollIntervalMs?: number;
  /**
   * Public HTTPS URL at which Shotlist receives Replicate's callbacks; when set, predictions ask
   * for a `completed` webhook. Unset: polling only (Shotlist not reachable from the internet).
   */
  webhookUrl?: string;
  /** Overrides of the declared limits (defaults: 2048 px, webp/jpeg/png, 600 creates a minute). */
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

export interface ReplicateProvider extends AsyncPaidProvider {
  /**
   * The account's webhook signing secret (`whsec_…`) from `GET /v1/webhooks/default/secret`,
   * which `verifyReplicateWebhook` needs. Cache it: it changes only when rotated.
   */
  webhookSecret(context: CallContext): Promise<string>;
}

const STATUSES = ["starting", "processing", "succeeded", "failed", "canceled", "aborted"] as const;

const predictionSchema = z.object({
  id: z.string().min(1),
  status: z.enum(STATUSES),
  output: z.unknown().optional(),
  error: z.unknown().optional(),
});

type Prediction = z.infer<typeof predictionSchema>;

const VERSION_ID = /^[0-9a-f]{64}$/;

/**
 * Refusals of Replicate's safety checkers arrive as a failed prediction, not an HTTP status:
 * FLUX's "NSFW content detected", and "flagged as sensitive (E005)" from partner models.
 */
const CONTENT_POLICY = /nsfw|flagged as sensitive|\(E005\)|content polic|safety checker/i;

/**
 * Replicate (https://replicate.com/docs/reference/http) through the official `replicate` SDK:
 * predictions by model version id, async — `submit` creates the prediction and returns its id at
 * once (no `Prefer: wait`), `poll` reads it; a `completed` webhook is requested when Shotlist is
 * reachable. Output files are fetched at once and checked: they expire after an hour.
 */
export function createReplicateProvider(options: ReplicateProviderOptions): ReplicateProvider {
  const name = options.name ?? "replicate";
  const baseUrl = normaliseBaseUrl(name, options.baseUrl ?? REPLICATE_API_URL);
  const timeoutMs = options.timeoutMs ?? 30_000;
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  checkApiKey(name, options.apiKey);
  checkTimeout(name, timeoutMs);
  checkImageInputs(name, options.models);
  const pollIntervalMs = options.pollIntervalMs ?? 1_000;
  const baseFetch = options.fetch ?? fetch;
  const fetchOutput = options.fetchOutput ?? baseFetch;
  for (const [model, config] of Object.entries(options.models)) {
    if (!VERSION_ID.test(config.version)) {
      throw new ShotlistError(
        "invalid_config",
        `${name}: model "${model}" version must be a 64-character hex version id, got "${config.version}"`,
      );
    }
  }
  checkWebhookUrl(name, options.webhookUrl);
  const priceOf = priceTable(name, Object.keys(options.models), options);
  const operations = operationsOf(options.models);
  const limits: ProviderLimits = {
    maxSide: 2048,
    formats: ["webp", "jpeg", "png"],
    requestsPerMinute: 600,
    ...options.limits,
  };

  const client = (deadline: CallDeadline) =>
    new Replicate({
      auth: options.apiKey,
      baseUrl,
      fetch: deadline.fetch,
      userAgent: "shotlist",
      useFileOutput: false,
      // Reference images go as data URIs we build ourselves: replicate 1.4's "data-uri" strategy
      // passes the client where the input belongs (the body becomes the client object), and the
      // "default" one uploads only Blob/Buffer values, of which we send none.
      fileEncodingStrategy: "default",
    });

  const modelOf = (model: string): ReplicateModelConfig => {
    const config = options.models[model];
    if (!config) {
      throw new ProviderCallError(name, "invalid_request", `model "${model}" is not configured`);
    }
    return config;
  };

  async function inputOf(
    request: ProviderRequest,
    model: ReplicateModelConfig,
  ): Promise<Record<string, unknown>> {
    const { recipe } = request;
    const { output } = recipe;
    checkOutputFits(name, output, limits);
    return {
      ...model.input,
      ...(recipe.prompt === null ? {} : { prompt: recipe.prompt }),
      seed: recipe.seed,
      width: output.width,
      height: output.height,
      num_outputs: 1,
      output_format: output.format === "jpeg" ? "jpg" : output.format,
      output_quality: output.quality,
      ...(model.imageInput
        ? { [model.imageInput]: await firstReferenceDataUri(name, request, maxPixels) }
        : {}),
    };
  }

  function parsePrediction(answer: unknown): Prediction {
    const parsed = predictionSchema.safeParse(answer);
    if (!parsed.success) {
      throw new ProviderCallError(name, "bad_output", "the answer is not a prediction object");
    }
    return parsed.data;
  }

  function failedPrediction(prediction: Prediction): ProviderCallError {
    const error = typeof prediction.error === "string" ? prediction.error : "";
    if (prediction.status === "aborted") {
      return new ProviderCallError(name, "timeout", `prediction ${prediction.id} hit its deadline`);
    }
    if (prediction.status === "canceled") {
      return new ProviderCallError(name, "invalid_request", `prediction ${prediction.id} canceled`);
    }
    // A failed prediction is billed for its run time, and the same input fails the same way more
    // often than not, so it is permanent: the slot moves down its chain instead of paying again.
    return new ProviderCallError(
      name,
      CONTENT_POLICY.test(error) ? "content_policy" : "invalid_request",
      `prediction ${prediction.id} failed: ${error || "no error message"}`,
    );
  }

  async function resultOf(
    prediction: Prediction,
    handle: AsyncCallHandle,
    deadline: CallDeadline,
  ): Promise<ProviderResult> {
    const output = Array.isArray(prediction.output) ? prediction.output[0] : prediction.output;
    if (typeof output !== "string") {
      throw new ProviderCallError(name, "bad_output", `prediction ${prediction.id} has no output`);
    }
    const labelled = await outputOfJob(name, output, handle, {
      deadline,
      fetch: fetchOutput,
      maxPixels,
    });
    return { ...labelled, costMicros: priceOf(handle.model), providerRequestId: prediction.id };
  }

  async function submit(
    request: ProviderRequest,
    context: PaidCallContext,
  ): Promise<{ externalId: string }> {
    const model = modelOf(request.recipe.model);
    if (request.recipe.modelVersion !== model.version) {
      // The recipe pins what made (or will make) its bytes; running another version under its
      // hash would break provenance. A changed version is a new recipe (`shotlist regenerate`).
      throw new ProviderCallError(
        name,
        "invalid_request",
        `recipe pins version ${request.recipe.modelVersion}, configuration runs ${model.version}`,
      );
    }
    const input = await inputOf(request, model);
    return withDeadline(context, timeoutMs, baseFetch, async (deadline) => {
      let answer: unknown;
      try {
        answer = await client(deadline).predictions.create({
          version: model.version,
          input,
          ...(options.webhookUrl
            ? { webhook: options.webhookUrl, webhook_events_filter: ["completed" as const] }
            : {}),
          signal: deadline.signal,
        });
      } catch (error) {
        throw failureOfCall(name, deadline, context, error);
      }
      const prediction = parsePrediction(answer);
      return {
        externalId: encodeHandle({
          providerId: prediction.id,
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
      throw new ProviderCallError(
        name,
        "invalid_request",
        `not a replicate external id: ${externalId}`,
      );
    }
    return withDeadline(context, timeoutMs, baseFetch, async (deadline) => {
      let answer: unknown;
      try {
        answer = await client(deadline).predictions.get(encodeURIComponent(handle.providerId), {
          signal: deadline.signal,
        });
      } catch (error) {
        throw asPollFailure(name, failureOfCall(name, deadline, context, error));
      }
      let prediction: Prediction;
      try {
        prediction = parsePrediction(answer);
      } catch (error) {
        throw asPollFailure(name, error);
      }
      if (prediction.id !== handle.providerId) {
        throw new ProviderCallError(
          name,
          "bad_output",
          `asked for ${handle.providerId}, got another`,
        );
      }
      switch (prediction.status) {
        case "starting":
        case "processing":
          return { status: "pending" };
        case "succeeded":
          // Thrown, not a failed poll: the prediction succeeded and was billed. A bad image
          // (bad_output) is its final answer; a failed download (unavailable) may heal.
          return { status: "succeeded", result: await resultOf(prediction, handle, deadline) };
        default:
          return { status: "failed", error: failedPrediction(prediction) };
      }
    });
  }

  return {
    name,
    billing: "paid",
    mode: "async",
    operations,
    limits,
    modelVersion(model: string): string {
      const config = options.models[model];
      if (!config) {
        throw new ShotlistError("invalid_config", `${name}: model "${model}" is not configured`);
      }
      return config.version;
    },
    estimateCostMicros(request: ProviderRequest): number {
      return priceOf(request.recipe.model);
    },
    submit,
    poll,
    run: (request: ProviderRequest, context: CallContext) =>
      runToEnd({ submit, poll }, request, context, pollIntervalMs),
    async webhookSecret(context: CallContext): Promise<string> {
      return withDeadline(context, timeoutMs, baseFetch, async (deadline) => {
        let answer: unknown;
        try {
          answer = await client(deadline).webhooks.default.secret.get({ signal: deadline.signal });
        } catch (error) {
          throw failureOfCall(name, deadline, context, error);
        }
        const parsed = z.object({ key: z.string().startsWith("whsec_") }).safeParse(answer);
        if (!parsed.success) {
          throw new ProviderCallError(name, "bad_output", "the webhook secret answer has no key");
        }
        return parsed.data.key;
      });
    },
  };
}
