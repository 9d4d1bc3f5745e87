import { z } from "zod";
import { httpUrl } from "../config/shotlist.js";
import { ShotlistError } from "../domain/errors.js";
import type { ProviderConfig, ProviderKind, ShotListConfig } from "../domain/shotlist.js";
import { createFalProvider, FAL_QUEUE_URL } from "./fal/index.js";
import { createHttpProvider } from "./http/index.js";
import { createLocalProvider } from "./local/index.js";
import { createOpenAIProvider } from "./openai/index.js";
import type { PriceOptions } from "./paid-call.js";
import { createPhotoroomProvider } from "./photoroom/index.js";
import type { ImageProvider } from "./provider.js";
import { assertProvidersConfigured, createRegistry, type ProviderRegistry } from "./registry.js";
import { createRemoveBgProvider } from "./removebg/index.js";
import { createReplicateProvider, REPLICATE_API_URL } from "./replicate/index.js";
import { createTemplateProvider } from "./template/index.js";

/** The default `fetchOutput`: refuses, so nothing is ever fetched past an absent SSRF guard. */
const refuseOutputFetch = (async (input: string | URL | Request) => {
  throw new ShotlistError(
    "output_url_forbidden",
    `no guarded fetch for provider outputs was configured; refused ${String(input instanceof Request ? input.url : input)}`,
  );
}) as typeof fetch;

/** What a factory receives besides its own config entry: credentials, the pixel guard, callbacks. */
export interface ProviderFactoryContext {
  /** The value of the entry's `apiKeyEnv` variable (checked to be set and non-empty). */
  apiKey: string | undefined;
  /** Decompression-bomb guard for the provider's answers (SHOTLIST_MAX_PIXELS). */
  maxPixels: number;
  /**
   * Where this provider's callbacks are received (`<SHOTLIST_PUBLIC_URL>/webhooks/providers/<name>`),
   * or undefined when SHOTLIST_PUBLIC_URL is unset: async adapters poll then. A `webhookUrl` in
   * the entry itself wins.
   */
  callbackUrl: string | undefined;
  /**
   * Fetches a provider's output file (a URL the provider's answer names) through the SSRF guard
   * (src/intake/address-guard.ts): adapters take it as their `fetchOutput` option.
   */
  fetchOutput: typeof fetch;
}

export type ProviderFactory = (
  config: ProviderConfig,
  context: ProviderFactoryContext,
) => ImageProvider;

/** The vendors' documented API roots: `baseUrl` in the file overrides them (tests: a fake). */
export const VENDOR_BASE_URLS = {
  openai: "https://api.openai.com/v1",
  removebg: "https://api.remove.bg",
  photoroom: "https://sdk.photoroom.com",
  replicate: REPLICATE_API_URL,
  fal: FAL_QUEUE_URL,
} as const;

const OPERATIONS = ["generate", "edit", "remove-background", "compose"] as const;

/** `options.limits`, the one shape every vendor kind takes (the adapter's defaults fill the rest). */
const limitsSchema = z.strictObject({
  maxSide: z.number().int().min(16).max(16_384).optional(),
  formats: z
    .array(z.enum(["jpeg", "png", "webp", "avif"]))
    .min(1)
    .optional(),
  requestsPerMinute: z.number().int().min(1).max(1_000_000).optional(),
});

/** Fields every model of an async vendor shares (`options.models.<name>`). */
const asyncModelFields = {
  operations: z.array(z.enum(OPERATIONS)).min(1).optional(),
  imageInput: z.string().min(1).max(100).optional(),
  input: z.record(z.string(), z.unknown()).optional(),
};

const imageInputRule = (
  model: { operations?: readonly string[] | undefined; imageInput?: string | undefined },
  context: z.RefinementCtx,
) => {
  const needsImage = (model.operations ?? []).some(
    (operation) => operation === "edit" || operation === "remove-background",
  );
  if (needsImage && !model.imageInput) {
    context.addIssue({
      code: "custom",
      path: ["imageInput"],
      message: "required for an edit or remove-background model: the input that takes the photo",
    });
  }
};

/** `options:` of each vendor kind; every key has its default in docs/providers/<kind>.md. */
export const VENDOR_OPTION_SCHEMAS = {
  openai: z.strictObject({
    organization: z.string().min(1).optional(),
    project: z.string().min(1).optional(),
    quality: z.enum(["low", "medium", "high", "auto"]).optional(),
    inputFidelity: z.enum(["high", "low"]).optional(),
    limits: limitsSchema.optional(),
  }),
  removebg: z.strictObject({
    foregroundType: z.enum(["auto", "person", "product", "car"]).optional(),
    limits: limitsSchema.optional(),
  }),
  photoroom: z.strictObject({
    editBaseUrl: httpUrl.optional(),
    limits: limitsSchema.optional(),
  }),
  replicate: z.strictObject({
    models: z
      .record(
        z.string().min(1).max(200),
        z
          .strictObject({
            version: z
              .string()
              .regex(
                /^[0-9a-f]{64}$/,
                "a 64-character hex model version id (Replicate's `version`)",
              ),
            ...asyncModelFields,
          })
          .superRefine(imageInputRule),
      )
      .refine((models) => Object.keys(models).length > 0, "at least one model"),
    limits: limitsSchema.optional(),
  }),
  fal: z.strictObject({
    models: z
      .record(
        z.string().min(1).max(200),
        z
          .strictObject({
            endpoint: z
              .string()
              .regex(/^[\w.-]+\/[\w./-]+$/, 'an endpoint id like "fal-ai/flux/dev"')
              .optional(),
            version: z.string().min(1).max(200).optional(),
            ...asyncModelFields,
          })
          .superRefine(imageInputRule),
      )
      .refine((models) => Object.keys(models).length > 0, "at least one model"),
    jwksUrl: httpUrl.optional(),
    limits: limitsSchema.optional(),
  }),
} as const;

type VendorKind = keyof typeof VENDOR_OPTION_SCHEMAS;

/** The entry's `options:` checked against its kind's schema; problems name file, line and path. */
function vendorOptions<K extends VendorKind>(
  kind: K,
  config: ProviderConfig,
): z.infer<(typeof VENDOR_OPTION_SCHEMAS)[K]> {
  const parsed = VENDOR_OPTION_SCHEMAS[kind].safeParse(config.options);
  if (!parsed.success) {
    throw new ShotlistError(
      "invalid_config",
      parsed.error.issues
        .map((issue) => `${config.where(["options", ...issue.path])}: ${issue.message}`)
        .join("\n"),
    );
  }
  return parsed.data as z.infer<(typeof VENDOR_OPTION_SCHEMAS)[K]>;
}

/** `price:` as the adapters take it: `prices` per model, `perCallMicros` for any other model. */
function priceOptions(config: ProviderConfig): PriceOptions {
  return {
    prices: config.price.models,
    ...(config.price.perCallMicros === undefined
      ? {}
      : { perCallMicros: config.price.perCallMicros }),
  };
}

/** An async vendor's models must each have a price, or the first call would fail for want of one. */
function requirePrices(config: ProviderConfig, models: readonly string[]): void {
  if (config.price.perCallMicros !== undefined) return;
  const missing = models.filter((model) => config.price.models[model] === undefined);
  if (missing.length > 0) {
    throw new ShotlistError(
      "invalid_config",
      `${config.where(["price", "models"])}: no price for model ${missing.map((model) => `"${model}"`).join(", ")} (set price.models or price.perCallMicros)`,
    );
  }
}

/** What every vendor adapter takes from the common keys of its entry. */
function commonOptions(config: ProviderConfig, kind: VendorKind, context: ProviderFactoryContext) {
  return {
    name: config.name,
    baseUrl: config.baseUrl ?? VENDOR_BASE_URLS[kind],
    apiKey: context.apiKey ?? "",
    // The one timeout knob: the policy's per-exchange timeout bounds the adapter's own deadline.
    timeoutMs: config.policy.timeoutMs,
    maxPixels: context.maxPixels,
    ...priceOptions(config),
  };
}

/**
 * What the async vendor adapters take besides: their poll pause (for `run`), the webhook (the
 * entry's `webhookUrl` wins, else this process's callback route when SHOTLIST_PUBLIC_URL is set)
 * and the SSRF-guarded fetch of their output files.
 */
function asyncOptions(
  config: ProviderConfig,
  models: readonly string[],
  context: ProviderFactoryContext,
) {
  requirePrices(config, models);
  const webhookUrl = config.webhookUrl ?? context.callbackUrl;
  return {
    pollIntervalMs: config.policy.pollIntervalMs,
    ...(webhookUrl ? { webhookUrl } : {}),
    fetchOutput: context.fetchOutput,
  };
}

/**
 * Adapter kind → factory, registered explicitly (Medusa's provider modules): a kind without an
 * entry is refused at start-up with the config path.
 */
export const PROVIDER_FACTORIES: Partial<Record<ProviderKind, ProviderFactory>> = {
  http: (config, context) =>
    createHttpProvider({
      name: config.name,
      // The schema requires these for kind http.
      baseUrl: config.baseUrl ?? "",
      apiKey: context.apiKey ?? "",
      mode: config.mode ?? "sync",
      perCallMicros: config.price.perCallMicros ?? 0,
      ...(config.webhookUrl ? { webhookUrl: config.webhookUrl } : {}),
    }),
  openai: (config, context) =>
    createOpenAIProvider({
      ...commonOptions(config, "openai", context),
      ...vendorOptions("openai", config),
    }),
  removebg: (config, context) =>
    createRemoveBgProvider({
      ...commonOptions(config, "removebg", context),
      ...vendorOptions("removebg", config),
    }),
  photoroom: (config, context) =>
    createPhotoroomProvider({
      ...commonOptions(config, "photoroom", context),
      ...vendorOptions("photoroom", config),
    }),
  replicate: (config, context) => {
    const options = vendorOptions("replicate", config);
    return createReplicateProvider({
      ...commonOptions(config, "replicate", context),
      ...asyncOptions(config, Object.keys(options.models), context),
      ...options,
    });
  },
  fal: (config, context) => {
    const options = vendorOptions("fal", config);
    return createFalProvider({
      ...commonOptions(config, "fal", context),
      ...asyncOptions(config, Object.keys(options.models), context),
      ...options,
    });
  },
};

export interface BuildRegistryOptions {
  /** The environment the API keys are read from (`apiKeyEnv`). */
  env: Readonly<Record<string, string | undefined>>;
  /** Decompression-bomb guard of the local pipeline (SHOTLIST_MAX_PIXELS). */
  maxPixels: number;
  /** Factories by kind; default PROVIDER_FACTORIES (tests may add one). */
  factories?: Partial<Record<ProviderKind, ProviderFactory>>;
  /** SHOTLIST_PUBLIC_URL when set (Settings.providerCallbackBaseUrl): callbacks are asked for. */
  callbackBaseUrl?: string | undefined;
  /**
   * The SSRF-guarded fetch of provider output files (`createGuardedFetch` of
   * src/intake/address-guard.ts, which this module may not import). Default: a fetch that
   * refuses every URL, so a registry built without the guard can plan and estimate but never
   * fetches an output unguarded.
   */
  fetchOutput?: typeof fetch;
}

/**
 * The one place the provider registry is built: `local`, then every `providers:` entry of the
 * shot list through its kind's factory. Then every chain link must name a registered provider
 * and a model it knows. All problems are reported together, each with its file, line and path.
 */
export function buildProviderRegistry(
  shotList: ShotListConfig,
  options: BuildRegistryOptions,
): ProviderRegistry {
  const factories = options.factories ?? PROVIDER_FACTORIES;
  const providers: ImageProvider[] = [
    createLocalProvider({ maxPixels: options.maxPixels }),
    // Built in like local (issue 5 §5): the stock-template fallback before human review.
    createTemplateProvider({ maxPixels: options.maxPixels }),
  ];
  const problems: string[] = [];
  for (const config of shotList.providers.values()) {
    const factory = factories[config.kind];
    if (!factory) {
      problems.push(
        `${config.where("kind")}: the ${config.kind} adapter is not available in this build (available: ${Object.keys(factories).join(", ")})`,
      );
      continue;
    }
    if (config.kind !== "http" && !config.apiKeyEnv) {
      problems.push(
        `${config.where("kind")}: apiKeyEnv is required for kind ${config.kind}: the NAME of the environment variable holding the key`,
      );
      continue;
    }
    let apiKey: string | undefined;
    if (config.apiKeyEnv) {
      apiKey = options.env[config.apiKeyEnv];
      if (!apiKey) {
        problems.push(
          `${config.where("apiKeyEnv")}: environment variable ${config.apiKeyEnv} is not set (the API key is read from it)`,
        );
        continue;
      }
    }
    const callbackUrl =
      config.webhookUrl ??
      (options.callbackBaseUrl
        ? `${options.callbackBaseUrl}/webhooks/providers/${encodeURIComponent(config.name)}`
        : undefined);
    try {
      providers.push(
        factory(config, {
          apiKey,
          maxPixels: options.maxPixels,
          callbackUrl,
          fetchOutput: options.fetchOutput ?? refuseOutputFetch,
        }),
      );
    } catch (error) {
      if (!(error instanceof ShotlistError) || error.code !== "invalid_config") throw error;
      // The adapter's own construction checks name the provider, not the file: add where.
      problems.push(
        error.message.startsWith(shotList.origin)
          ? error.message
          : `${config.where("options")}: ${error.message}`,
      );
    }
  }
  if (problems.length > 0) throw new ShotlistError("invalid_config", problems.join("\n"));
  const registry = createRegistry(providers);
  assertProvidersConfigured(shotList, registry);
  return registry;
}
