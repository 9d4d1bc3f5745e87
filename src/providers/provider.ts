import type { OutputFormat, Recipe } from "../domain/recipe.js";

export type Operation = "generate" | "edit" | "remove-background" | "compose";

export interface ProviderRequest {
  recipe: Recipe;
  recipeHash: string;
  /** Bytes of every reference image the recipe names, keyed by SHA-256 hex. */
  references: ReadonlyMap<string, Buffer>;
}

export interface ProviderResult {
  bytes: Buffer;
  format: OutputFormat;
  width: number;
  height: number;
  costMicros: number;
  /** The provider's own id for the call, for provenance (absent for local work). */
  providerRequestId?: string;
  /** Measured subject fill ratio when the provider knows it (the local pipeline does). */
  subjectFill?: number;
}

export interface CallContext {
  signal: AbortSignal;
}

/** One small interface every imagery adapter implements (STYLE §2). */
export interface ImageProvider {
  readonly name: string;
  readonly operations: readonly Operation[];
  /** Model version string recorded in recipes, e.g. "sharp 0.35.5 / vips 8.18.7 / pipeline 1". */
  modelVersion(model: string): string;
  estimateCostMicros(request: ProviderRequest): number;
  run(request: ProviderRequest, context: CallContext): Promise<ProviderResult>;
}
