import { ShotlistError } from "../domain/errors.js";
import type { ProviderConfig, ProviderKind, ShotListConfig } from "../domain/shotlist.js";
import { createHttpProvider } from "./http/index.js";
import { createLocalProvider } from "./local/index.js";
import type { ImageProvider } from "./provider.js";
import { assertProvidersConfigured, createRegistry, type ProviderRegistry } from "./registry.js";
import { createTemplateProvider } from "./template/index.js";

/** What a factory receives besides its own config entry: credentials, read from the environment. */
export interface ProviderFactoryContext {
  /** The value of the entry's `apiKeyEnv` variable (checked to be set and non-empty). */
  apiKey: string | undefined;
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
    providers.push(factory(config, { apiKey }));
  }
  if (problems.length > 0) throw new ShotlistError("invalid_config", problems.join("\n"));
  const registry = createRegistry(providers);
  assertProvidersConfigured(shotList, registry);
  return registry;
}
