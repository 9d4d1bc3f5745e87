import { ShotlistError } from "../domain/errors.js";
import type { ProviderConfig, ProviderKind, ShotListConfig } from "../domain/shotlist.js";
import { createHttpProvider } from "./http/index.js";
import { createLocalProvider } from "./local/index.js";
import type { ImageProvider } from "./provider.js";
import { assertProvidersConfigured, createRegistry, type ProviderRegistry } from "./registry.js";

/** The default `fetchOutput`: refuses, so nothing is ever fetched past an absent SSRF guard. */
const refuseOutputFetch = (async (input: string | URL | Request) => {
  throw new ShotlistError(
    "output_url_forbidden",
    `no guarded fetch for provider outputs was configured; refused ${String(input instanceof Request ? input.url : input)}`,
  );
}) as typeof fetch;

/** What a factory receives besides its own config entry: credentials, read from the environment. */
export interface ProviderFactoryContext {
  /** The value of the entry's `apiKeyEnv` variable (checked to be set and non-empty). */
  apiKey: string | undefined;
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

/**
 * Adapter kind → factory, registered explicitly (Medusa's provider modules): a kind without an
 * entry is refused at start-up with the config path. The vendor adapters (openai, replicate,
 * fal, removebg, photoroom) add their entries here.
 */
export const PROVIDER_FACTORIES: Partial<Record<ProviderKind, ProviderFactory>> = {
  http: (config, context) =>
    createHttpProvider({
      name: config.name,
      // The schema requires these three for kind http.
      baseUrl: config.baseUrl ?? "",
      apiKey: context.apiKey ?? "",
      mode: config.mode ?? "sync",
      perCallMicros: config.price.perCallMicros,
      ...(config.webhookUrl ? { webhookUrl: config.webhookUrl } : {}),
    }),
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
 * shot list through its kind's factory. Then every chain link must name a registered provider.
 * All problems are reported together, each with its file, line and path.
 */
export function buildProviderRegistry(
  shotList: ShotListConfig,
  options: BuildRegistryOptions,
): ProviderRegistry {
  const factories = options.factories ?? PROVIDER_FACTORIES;
  const providers: ImageProvider[] = [createLocalProvider({ maxPixels: options.maxPixels })];
  const problems: string[] = [];
  for (const config of shotList.providers.values()) {
    const factory = factories[config.kind];
    if (!factory) {
      problems.push(
        `${config.where("kind")}: the ${config.kind} adapter is not available in this build (available: ${Object.keys(factories).join(", ")})`,
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
    providers.push(
      factory(config, {
        apiKey,
        callbackUrl,
        fetchOutput: options.fetchOutput ?? refuseOutputFetch,
      }),
    );
  }
  if (problems.length > 0) throw new ShotlistError("invalid_config", problems.join("\n"));
  const registry = createRegistry(providers);
  assertProvidersConfigured(shotList, registry);
  return registry;
}
