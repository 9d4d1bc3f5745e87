import { ShotlistError } from "../domain/errors.js";
import type { ShotListConfig } from "../domain/shotlist.js";
import type { ImageProvider } from "./provider.js";

/** Maps provider names to adapters, registered explicitly (Medusa's provider modules). */
export interface ProviderRegistry {
  get(name: string): ImageProvider;
  modelVersionOf(provider: string, model: string): string;
  names(): string[];
}

export function createRegistry(providers: readonly ImageProvider[]): ProviderRegistry {
  const byName = new Map(providers.map((provider) => [provider.name, provider]));
  const get = (name: string): ImageProvider => {
    const provider = byName.get(name);
    if (!provider) {
      throw new ShotlistError("provider_error", `no provider named "${name}" is registered`, {
        status: 500,
      });
    }
    return provider;
  };
  return {
    get,
    modelVersionOf: (provider, model) => get(provider).modelVersion(model),
    names: () => [...byName.keys()],
  };
}

/** Start-up check: every chain link of the shot list names a registered provider. */
export function assertProvidersConfigured(
  config: ShotListConfig,
  registry: ProviderRegistry,
): void {
  const known = new Set(registry.names());
  const problems: string[] = [];
  for (const { category, slots } of config.categories.values()) {
    for (const slot of slots) {
      for (const [index, link] of slot.chain.entries()) {
        if (!known.has(link.provider)) {
          problems.push(
            `${config.origin}: categories.${category} slot ${slot.name} chain.${index}: provider "${link.provider}" is not configured (configured: ${[...known].join(", ")})`,
          );
        }
      }
    }
  }
  if (problems.length > 0) throw new ShotlistError("invalid_config", problems.join("\n"));
}
