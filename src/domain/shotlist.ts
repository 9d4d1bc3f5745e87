import type { CheckSpec } from "./checks.js";
import type { OutputSpec, SlotSource, Step } from "./recipe.js";

/**
 * What a paid link's provider is given as its input image: the reference photo as it is, or the
 * local cut-out of it (the `cutout` and `crop` steps, a PNG with alpha), e.g. for an edit that
 * puts the product in a scene.
 */
export type LinkInput = "reference" | "cutout";

/** One way of making a slot: a provider, its model, and the steps it runs. */
export interface ChainLink {
  provider: string;
  model: string;
  steps: Step[];
  /** Prompt template with {{title}}, {{color}}, {{material}}, {{category}}; null for local work. */
  prompt: string | null;
  /** Paid links only: what the provider gets as its input image; default the reference photo. */
  input?: LinkInput;
  /**
   * Paid links only: local steps run on the provider's output (its alpha, if any, is the
   * subject), e.g. crop → place on white → shadow after a background removal. Empty or absent:
   * the provider's output is the slot's image.
   */
  then?: Step[];
}

/** A named image every product of a category must have (DESIGN §1 "shot list"). */
export interface SlotDefinition {
  name: string;
  /** Counted by coverage when true. */
  required: boolean;
  /** Alt text template, e.g. "{{title}} — front view". */
  alt: string;
  source: SlotSource;
  /** Tried in order; after the last link comes the review queue. */
  chain: ChainLink[];
  checks: CheckSpec;
  output: OutputSpec;
}

export interface CategoryShotList {
  category: string;
  slots: SlotDefinition[];
}

export interface ShotListConfig {
  /** Where it was loaded from (for error messages and provenance). */
  origin: string;
  categories: ReadonlyMap<string, CategoryShotList>;
  /** Paid providers configured in the file, by the name chain links use (`local` is built in). */
  providers: ReadonlyMap<string, ProviderConfig>;
}

/** Adapter kinds a `providers:` entry may name; `http` is the generic documented protocol. */
export const PROVIDER_KINDS = [
  "http",
  "openai",
  "replicate",
  "fal",
  "removebg",
  "photoroom",
] as const;
export type ProviderKind = (typeof PROVIDER_KINDS)[number];

/** Resilience of one provider (docs/providers.md "Policies"); every default is listed there. */
export interface ProviderPolicy {
  /** One HTTP exchange (a sync call, a submit, a poll); default 60,000 ms. */
  timeoutMs: number;
  /** Retries of a call the provider refused without billing (429, 5xx); default 3. */
  retries: number;
  /** Exponential backoff with full jitter: base and cap; defaults 500 ms and 30,000 ms. */
  retryBaseMs: number;
  retryCapMs: number;
  /** A Retry-After longer than this is not waited for in the worker: the job retries later; default 30,000 ms. */
  maxInlineWaitMs: number;
  /** Consecutive failures (5xx, timeouts) that open the circuit, and how long it stays open. */
  breaker: { failures: number; halfOpenAfterMs: number };
  /** Calls in flight at once per process (bulkhead); default 4. */
  concurrency: number;
  /** Spend cap per UTC day in micros (succeeded + in doubt + open calls); null = no cap. */
  dailyBudgetMicros: number | null;
  /** At the cap: `wait` (the job sleeps until the next UTC day or `budgetRetryMs`) or `fallback` (next link). */
  onBudget: "wait" | "fallback";
  /** With onBudget wait: retry after this many ms instead of the next UTC day; null = next day. */
  budgetRetryMs: number | null;
  /** Async providers: poll interval and how long one job attempt polls; defaults 1,000 and 600,000 ms. */
  pollIntervalMs: number;
  asyncTimeoutMs: number;
}

export interface ProviderConfig {
  name: string;
  kind: ProviderKind;
  baseUrl: string | null;
  /** Name of the environment variable holding the API key (credentials never live in the file). */
  apiKeyEnv: string | null;
  mode: "sync" | "async" | null;
  /**
   * Micros (1,000,000 = 1.00) per accepted call: `models` by model name, else `perCallMicros`;
   * at least one is set (http: `perCallMicros` is required).
   */
  price: { perCallMicros?: number; models: Readonly<Record<string, number>> };
  policy: ProviderPolicy;
  /** Optional webhook URL an async provider posts the finished job to. */
  webhookUrl: string | null;
  /** The vendor kind's own settings, validated by its factory (src/providers/configured.ts). */
  options: Readonly<Record<string, unknown>>;
  /**
   * "file:line: at providers.<name>.<path>" for start-up errors; `path` is a key or a list of keys
   * (`["options", "models", "flux", "version"]`), located at its own line or its nearest parent's.
   */
  where: (path: string | readonly PropertyKey[]) => string;
}
