import type { CheckSpec } from "./checks.js";
import type { OutputSpec, SlotSource, Step } from "./recipe.js";

/** One way of making a slot: a provider, its model, and the steps it runs. */
export interface ChainLink {
  provider: string;
  model: string;
  steps: Step[];
  /** Prompt template with {{title}}, {{color}}, {{material}}, {{category}}; null for local work. */
  prompt: string | null;
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
}
