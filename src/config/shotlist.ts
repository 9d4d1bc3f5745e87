import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { LineCounter, parseDocument } from "yaml";
import { z } from "zod";
import { ShotlistError } from "../domain/errors.js";
import { TEMPLATE_PLACEHOLDERS, templatePlaceholders } from "../domain/plan.js";
import type { Step } from "../domain/recipe.js";
import {
  type CategoryShotList,
  PROVIDER_KINDS,
  type ProviderConfig,
  type ShotListConfig,
  type SlotDefinition,
} from "../domain/shotlist.js";

export const DEFAULT_SHOTLIST_PATH = fileURLToPath(
  new URL("./shotlist.default.yaml", import.meta.url),
);

const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const hexColor = z.string().regex(/^#[0-9a-fA-F]{6}$/, "a colour as #rrggbb");
const unit = z.number().min(0).max(1);

const stepSchema = z.discriminatedUnion("op", [
  z.strictObject({ op: z.literal("cutout"), tolerance: z.number().min(1).max(255).optional() }),
  z.strictObject({ op: z.literal("crop"), padding: z.number().min(0).max(1).optional() }),
  z.strictObject({ op: z.literal("place"), fill: z.number().gt(0).max(1), background: hexColor }),
  z.strictObject({ op: z.literal("shadow"), opacity: unit, blur: z.number().min(0).max(400) }),
  z.strictObject({
    op: z.literal("scene"),
    scene: z.string().regex(NAME),
    fill: z.number().gt(0).max(1),
  }),
  z.strictObject({ op: z.literal("swatch-grid"), columns: z.number().int().min(1).max(12) }),
]);

const outputSchema = z.strictObject({
  width: z.number().int().min(16).max(8192),
  height: z.number().int().min(16).max(8192),
  format: z.enum(["jpeg", "webp", "avif", "png"]),
  quality: z.number().int().min(1).max(100),
});

/** Adds an issue for every placeholder of `template` that is not one of TEMPLATE_PLACEHOLDERS. */
function checkTemplate(
  template: string | null | undefined,
  path: PropertyKey[],
  context: z.RefinementCtx,
): void {
  // Refinements may see a value whose other fields already failed: check only what is a string.
  if (typeof template !== "string") return;
  for (const name of templatePlaceholders(template)) {
    if (!(TEMPLATE_PLACEHOLDERS as readonly string[]).includes(name)) {
      context.addIssue({
        code: "custom",
        path,
        message: `unknown placeholder {{${name}}}; expected one of ${TEMPLATE_PLACEHOLDERS.map((known) => `{{${known}}}`).join(", ")}`,
      });
    }
  }
}

/**
 * Why `steps` cannot run on a subject (a photo or a provider's output), or undefined: the same
 * order rules the local pipeline enforces at render time, told at load time with the path.
 */
function stepOrderProblem(steps: readonly Step[]): { index: number; message: string } | undefined {
  let placed = false;
  for (const [index, step] of steps.entries()) {
    switch (step?.op) {
      case "swatch-grid":
        return { index, message: "swatch-grid draws the variants; it cannot run on an image" };
      case "shadow":
        if (!placed) return { index, message: "shadow needs a place or scene step before it" };
        break;
      default:
        if (placed) return { index, message: `${step?.op} cannot follow place or scene` };
        if (step?.op === "place" || step?.op === "scene") placed = true;
    }
  }
  return undefined;
}

const linkSchema = z
  .strictObject({
    provider: z.string().regex(NAME, "a provider name such as local"),
    model: z.string().min(1).max(200).default("default"),
    steps: z.array(stepSchema).default([]),
    prompt: z.string().max(4000).nullable().default(null),
    input: z.enum(["reference", "cutout"]).default("reference"),
    // biome-ignore lint/suspicious/noThenProperty: the documented YAML key of a shot list, data that is never awaited
    then: z.array(stepSchema).max(16).default([]),
  })
  .superRefine((link, context) => {
    checkTemplate(link.prompt, ["prompt"], context);
    if (link.provider === "local") {
      // The local pipeline runs its own steps; "then" and "input" describe the work around a
      // paid call, so on a local link they would be silently meaningless.
      if (Array.isArray(link.then) && link.then.length > 0) {
        context.addIssue({
          code: "custom",
          path: ["then"],
          message: "then follows a paid provider's step; a local link lists its work under steps",
        });
      }
      if (link.input !== "reference") {
        context.addIssue({
          code: "custom",
          path: ["input"],
          message: "input chooses a paid provider's input image; a local link uses steps",
        });
      }
      return;
    }
    const problem = Array.isArray(link.then) ? stepOrderProblem(link.then) : undefined;
    if (problem) {
      context.addIssue({ code: "custom", path: ["then", problem.index], message: problem.message });
    }
  });

/** A slot reads the variants or a reference; `input: cutout` needs the reference photo. */
function checkLinksAgainstSource(
  slot: {
    source?: z.infer<typeof sourceSchema> | undefined;
    chain?: z.infer<typeof linkSchema>[] | undefined;
  },
  context: z.RefinementCtx,
): void {
  if (typeof slot.source !== "object" || slot.source === null || !("variants" in slot.source)) {
    return;
  }
  for (const [index, link] of (Array.isArray(slot.chain) ? slot.chain : []).entries()) {
    if (link?.input === "cutout") {
      context.addIssue({
        code: "custom",
        path: ["chain", index, "input"],
        message: "input: cutout needs a reference photo as the slot's source, not the variants",
      });
    }
  }
}

const checksSchema = z.strictObject({
  whiteBorder: z.strictObject({ minValue: z.number().int().min(0).max(255) }).optional(),
  fill: z
    .strictObject({ min: unit, max: unit })
    .refine((fill) => fill.min <= fill.max, "fill.min must not exceed fill.max")
    .optional(),
  notBlank: z.strictObject({ minStdDev: z.number().min(0) }).optional(),
  notInput: z.boolean().optional(),
  blur: z.strictObject({ max: unit }).optional(),
});

const sourceSchema = z.union([
  z.strictObject({ reference: z.number().int().min(0).max(31) }),
  z.strictObject({ variants: z.literal(true) }),
]);

const slotSchema = z
  .strictObject({
    alt: z.string().max(500).default("{{title}}"),
    required: z.boolean().default(true),
    source: sourceSchema,
    chain: z.array(linkSchema).min(1, "at least one way of making the slot"),
    checks: checksSchema.default({}),
    output: outputSchema.optional(),
  })
  .superRefine((slot, context) => {
    checkTemplate(slot.alt, ["alt"], context);
    checkLinksAgainstSource(slot, context);
  });

// Written out, not slotSchema.partial(): zod 4 applies a field's default even when the field is
// optional, so a partial override that named only `chain` replaced the slot's checks with {}.
const slotOverrideSchema = z
  .strictObject({
    alt: z.string().max(500).optional(),
    required: z.boolean().optional(),
    source: sourceSchema.optional(),
    chain: z.array(linkSchema).min(1, "at least one way of making the slot").optional(),
    checks: checksSchema.optional(),
    output: outputSchema.optional(),
  })
  .superRefine((slot, context) => {
    checkTemplate(slot.alt, ["alt"], context);
    checkLinksAgainstSource(slot, context);
  });

const positiveMs = z.number().int().min(1).max(86_400_000);

const policySchema = z.strictObject({
  timeoutMs: positiveMs.default(60_000),
  retries: z.number().int().min(0).max(10).default(3),
  retryBaseMs: positiveMs.default(500),
  retryCapMs: positiveMs.default(30_000),
  maxInlineWaitMs: z.number().int().min(0).max(600_000).default(30_000),
  breaker: z
    .strictObject({
      failures: z.number().int().min(1).max(1000).default(5),
      halfOpenAfterMs: positiveMs.default(30_000),
    })
    .default({ failures: 5, halfOpenAfterMs: 30_000 }),
  concurrency: z.number().int().min(1).max(1000).default(4),
  dailyBudgetMicros: z.number().int().min(0).nullable().default(null),
  onBudget: z.enum(["wait", "fallback"]).default("wait"),
  budgetRetryMs: positiveMs.nullable().default(null),
  pollIntervalMs: positiveMs.default(1_000),
  asyncTimeoutMs: positiveMs.default(600_000),
});

/** An http:// or https:// URL (base URLs, webhook URLs; the vendor options use it too). */
export const httpUrl = z.string().refine((value) => {
  try {
    const url = new URL(value);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}, "an http:// or https:// URL");

/** Vendor kinds whose protocol is submit-then-poll; the others answer the image at once. */
const ASYNC_VENDOR_KINDS: ReadonlySet<string> = new Set(["replicate", "fal"]);

const providerSchema = z
  .strictObject({
    kind: z.enum(PROVIDER_KINDS, `an adapter kind: ${PROVIDER_KINDS.join(", ")}`),
    baseUrl: httpUrl.optional(),
    apiKeyEnv: z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/, "the NAME of an environment variable holding the key")
      .optional(),
    mode: z.enum(["sync", "async"]).optional(),
    price: z
      .strictObject({
        perCallMicros: z.number().int().min(0).optional(),
        models: z.record(z.string().min(1), z.number().int().min(0)).optional(),
      })
      .refine(
        (price) => price.perCallMicros !== undefined || Object.keys(price.models ?? {}).length > 0,
        "a price: perCallMicros (every call) and/or models (micros per model name)",
      ),
    policy: policySchema.default(policySchema.parse({})),
    webhookUrl: httpUrl.optional(),
    options: z.record(z.string(), z.unknown()).default({}),
  })
  .superRefine((provider, context) => {
    if (provider.kind !== "http") {
      // The vendor adapters know their own protocol: sync (openai, removebg, photoroom) or
      // async (replicate, fal). A mode written here would be silently wrong, so it is refused.
      if (provider.mode !== undefined) {
        context.addIssue({
          code: "custom",
          path: ["mode"],
          message: `only for kind http; ${provider.kind} is ${ASYNC_VENDOR_KINDS.has(provider.kind) ? "async" : "sync"} by its protocol`,
        });
      }
      return;
    }
    for (const key of ["baseUrl", "apiKeyEnv", "mode"] as const) {
      if (provider[key] === undefined) {
        context.addIssue({ code: "custom", path: [key], message: `required for kind http` });
      }
    }
    if (provider.price.perCallMicros === undefined) {
      context.addIssue({
        code: "custom",
        path: ["price", "perCallMicros"],
        message: "required for kind http (one price for every call)",
      });
    }
  });

const fileSchema = z.strictObject({
  version: z.literal(1),
  providers: z
    .record(
      z.string().regex(NAME, "a provider name: lowercase letters, digits and '-'"),
      providerSchema,
    )
    .default({}),
  defaults: z.strictObject({ output: outputSchema }).optional(),
  slots: z.record(
    z.string().regex(NAME, "a slot name: lowercase letters, digits and '-'"),
    slotSchema,
  ),
  categories: z.record(
    z.string().regex(NAME, "a category name: lowercase letters, digits and '-'"),
    z.strictObject({
      slots: z.array(z.string()).min(1),
      overrides: z.record(z.string(), slotOverrideSchema).optional(),
    }),
  ),
});

const FALLBACK_OUTPUT = { width: 1600, height: 1600, format: "jpeg", quality: 86 } as const;

/** Loads and validates a shot-list file; errors name the file, the path, the line and what was expected. */
export function loadShotList(path: string = DEFAULT_SHOTLIST_PATH): ShotListConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (cause) {
    throw new ShotlistError("invalid_config", `cannot read shot-list file ${path}`, { cause });
  }
  return parseShotList(text, path);
}

export function parseShotList(text: string, origin: string): ShotListConfig {
  const lineCounter = new LineCounter();
  const document = parseDocument(text, { merge: true, lineCounter, prettyErrors: false });
  const yamlError = document.errors[0];
  if (yamlError) {
    const line = lineCounter.linePos(yamlError.pos[0]).line;
    throw new ShotlistError("invalid_config", `${origin}:${line}: ${yamlError.message}`, {
      extra: { file: origin, line },
    });
  }
  const parsed = fileSchema.safeParse(document.toJS());
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const line = lineOf(document, lineCounter, issue.path);
      const where = issue.path.length > 0 ? issue.path.join(".") : "(top level)";
      return `${origin}:${line}: at ${where}: ${issue.message}`;
    });
    throw new ShotlistError("invalid_config", problems.join("\n"), {
      extra: { file: origin, errors: problems },
    });
  }
  const file = parsed.data;
  const defaultOutput = file.defaults?.output ?? FALLBACK_OUTPUT;
  const categories = new Map<string, CategoryShotList>();
  const problems: string[] = [];
  for (const [category, entry] of Object.entries(file.categories)) {
    const slots: SlotDefinition[] = [];
    for (const [position, slotName] of entry.slots.entries()) {
      const base = file.slots[slotName];
      if (!base) {
        const line = lineOf(document, lineCounter, ["categories", category, "slots", position]);
        problems.push(
          `${origin}:${line}: at categories.${category}.slots.${position}: unknown slot "${slotName}"; expected one of ${Object.keys(file.slots).join(", ")}`,
        );
        continue;
      }
      const slot = { ...base, ...(entry.overrides?.[slotName] ?? {}) };
      const chain = slot.chain ?? base.chain;
      if (slot.source && "variants" in slot.source && chain.some((l) => l.input === "cutout")) {
        // Only reachable through an override that changes the source or the chain alone.
        const line = lineOf(document, lineCounter, ["categories", category, "overrides", slotName]);
        problems.push(
          `${origin}:${line}: at categories.${category}.overrides.${slotName}: input: cutout needs a reference photo as the slot's source, not the variants`,
        );
        continue;
      }
      slots.push({
        name: slotName,
        required: slot.required ?? true,
        alt: slot.alt ?? "{{title}}",
        source:
          slot.source && "reference" in slot.source
            ? { kind: "reference", index: slot.source.reference }
            : { kind: "variants" },
        chain: chain.map((link) => ({ ...link })),
        checks: slot.checks ?? {},
        output: slot.output ?? defaultOutput,
      });
    }
    for (const overridden of Object.keys(entry.overrides ?? {})) {
      if (!entry.slots.includes(overridden)) {
        const line = lineOf(document, lineCounter, [
          "categories",
          category,
          "overrides",
          overridden,
        ]);
        problems.push(
          `${origin}:${line}: at categories.${category}.overrides.${overridden}: overrides a slot the category does not list`,
        );
      }
    }
    categories.set(category, { category, slots });
  }
  if (problems.length > 0) {
    throw new ShotlistError("invalid_config", problems.join("\n"), {
      extra: { file: origin, errors: problems },
    });
  }
  const providers = new Map<string, ProviderConfig>();
  for (const [name, entry] of Object.entries(file.providers)) {
    const line = lineOf(document, lineCounter, ["providers", name]);
    if (name === "local" || name === "template") {
      throw new ShotlistError(
        "invalid_config",
        `${origin}:${line}: at providers.${name}: ${name} is built in and cannot be configured; name your provider otherwise`,
        { extra: { file: origin, line } },
      );
    }
    providers.set(name, {
      name,
      kind: entry.kind,
      baseUrl: entry.baseUrl ?? null,
      apiKeyEnv: entry.apiKeyEnv ?? null,
      mode: entry.mode ?? null,
      price: {
        ...(entry.price.perCallMicros === undefined
          ? {}
          : { perCallMicros: entry.price.perCallMicros }),
        models: entry.price.models ?? {},
      },
      policy: entry.policy,
      webhookUrl: entry.webhookUrl ?? null,
      options: entry.options,
      // A key or a path (`["options", "models", "flux-1.1-pro", "version"]`) points at its own
      // line, or its nearest parent's.
      where: (path) => {
        const keys = typeof path === "string" ? [path] : path;
        const at = lineOf(document, lineCounter, ["providers", name, ...keys]);
        return `${origin}:${at}: at providers.${name}.${keys.map(String).join(".")}`;
      },
    });
  }
  return { origin, categories, providers };
}

/** The line of the deepest node that exists along `path` (a missing key points at its parent). */
function lineOf(
  document: ReturnType<typeof parseDocument>,
  lineCounter: LineCounter,
  path: readonly PropertyKey[],
): number {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = document.getIn(path.slice(0, depth) as unknown[], true) as
      | { range?: [number, number, number] }
      | undefined;
    if (node && typeof node === "object" && node.range) {
      return lineCounter.linePos(node.range[0]).line;
    }
  }
  return 1;
}
