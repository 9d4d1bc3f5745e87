import { drawStudioPhoto, PRODUCT_KINDS } from "../../examples/studio.js";

/** A product body as POST /v1/products and submitProduct take it. */
export interface SyntheticProduct {
  sku: string;
  title: string;
  category: string;
  referenceImages: { base64: string }[];
}

export interface SyntheticCatalogueOptions {
  count: number;
  /** Reference photos per product (views 0..n-1 of the drawing, at most 4). */
  views: number;
  /** Side of each square photo; small keeps renders quick. */
  sidePx: number;
  category: string;
  skuPrefix: string;
  seed: number;
}

/**
 * Products whose photos are all different (seeded drawings of the example studio), so every
 * product's recipes are its own and the number of render jobs is products × slots: a catalogue
 * of one photo reused would collapse into one recipe per slot (same inputs, same job).
 */
export async function drawSyntheticCatalogue(
  options: SyntheticCatalogueOptions,
): Promise<SyntheticProduct[]> {
  const products: SyntheticProduct[] = [];
  const draws: (() => Promise<void>)[] = [];
  for (let index = 0; index < options.count; index++) {
    const kind = PRODUCT_KINDS[index % PRODUCT_KINDS.length] ?? "mug";
    const product: SyntheticProduct = {
      sku: `${options.skuPrefix}-${String(index + 1).padStart(4, "0")}`,
      title: `Synthetic ${kind} ${index + 1}`,
      category: options.category,
      referenceImages: [],
    };
    products.push(product);
    for (let view = 0; view < options.views; view++) {
      draws.push(async () => {
        const hue = (index * 47 + view * 11) % 360;
        const photo = await drawStudioPhoto({
          kind,
          color: hslHex(hue, 0.55, 0.42),
          backdrop: index % 2 === 0 ? "plain" : "seamless",
          view: view % 4,
          width: options.sidePx,
          height: options.sidePx,
          seed: (options.seed * 100_003 + index * 8 + view) >>> 0,
        });
        product.referenceImages[view] = { base64: photo.jpeg.toString("base64") };
      });
    }
  }
  // sharp renders on its own threads: a few draws at once use them without flooding the CPU.
  let next = 0;
  await Promise.all(
    Array.from({ length: 3 }, async () => {
      while (next < draws.length) {
        const draw = draws[next++];
        await draw?.();
      }
    }),
  );
  return products;
}

function hslHex(hueDeg: number, saturation: number, lightness: number): string {
  const chroma = (1 - Math.abs(2 * lightness - 1)) * saturation;
  const x = chroma * (1 - Math.abs(((hueDeg / 60) % 2) - 1));
  const m = lightness - chroma / 2;
  const [r, g, b] =
    hueDeg < 60
      ? [chroma, x, 0]
      : hueDeg < 120
        ? [x, chroma, 0]
        : hueDeg < 180
          ? [0, chroma, x]
          : hueDeg < 240
            ? [0, x, chroma]
            : hueDeg < 300
              ? [x, 0, chroma]
              : [chroma, 0, x];
  return `#${[r, g, b]
    .map((channel) =>
      Math.round((channel + m) * 255)
        .toString(16)
        .padStart(2, "0"),
    )
    .join("")}`;
}

/**
 * A shot list of `slots` local studio slots (hero, angle-1, …; slot n uses reference photo n)
 * for one category, with small square outputs: quick renders for tests about the queue.
 */
export function localShotList(options: {
  category: string;
  slots: number;
  sidePx: number;
}): string {
  const names = Array.from({ length: options.slots }, (_, index) =>
    index === 0 ? "hero" : `angle-${index}`,
  );
  const slotYaml = names
    .map(
      (name, index) => `  ${name}:
    alt: "{{title}}"
    source: { reference: ${index} }
    chain:
      - provider: local
        model: sharp
        steps:
          - { op: cutout }
          - { op: crop }
          - { op: place, fill: 0.85, background: "#ffffff" }
    checks:
      notBlank: { minStdDev: 4 }`,
    )
    .join("\n");
  return `version: 1
defaults:
  output: { width: ${options.sidePx}, height: ${options.sidePx}, format: jpeg, quality: 82 }
slots:
${slotYaml}
categories:
  ${options.category}:
    slots: [${names.join(", ")}]
`;
}

export interface PaidShotListOptions {
  category: string;
  slots: number;
  sidePx: number;
  /** Base URL of the fake paid provider (test/fakes/paid-provider.ts). */
  baseUrl: string;
  /** Environment variable the API key is read from. */
  apiKeyEnv: string;
  /** The paid call's timeout; a pending call is held this plus 5 s before it is in doubt. */
  timeoutMs: number;
  /** The provider's protocol: one request (sync, the default) or submit + poll (async). */
  mode?: "sync" | "async";
  /** Async: time between polls; default 1,000 ms (the policy's default). */
  pollIntervalMs?: number;
}

/**
 * Every slot: the generic `http` provider `studio-api` first (a real HTTP call through the
 * ledger and its policies), the local studio pipeline (slot n from reference photo n) as the
 * fallback. Short retry delays and a breaker that tolerates a fault mix keep runs quick.
 */
export function paidShotList(options: PaidShotListOptions): string {
  const names = Array.from({ length: options.slots }, (_, index) =>
    index === 0 ? "hero" : `angle-${index}`,
  );
  const slots = names
    .map(
      (name, index) => `  ${name}:
    alt: "{{title}}"
    source: { reference: ${index} }
    chain:
      - provider: studio-api
        model: studio-1
        prompt: "{{title}} on white, studio light"
      - provider: local
        model: sharp
        steps:
          - { op: cutout }
          - { op: crop }
          - { op: place, fill: 0.85, background: "#ffffff" }
    checks:
      notBlank: { minStdDev: 4 }`,
    )
    .join("\n");
  return `version: 1
providers:
  studio-api:
    kind: http
    baseUrl: ${options.baseUrl}
    apiKeyEnv: ${options.apiKeyEnv}
    mode: ${options.mode ?? "sync"}
    price: { perCallMicros: 40000 }
    policy:
      timeoutMs: ${options.timeoutMs}
      pollIntervalMs: ${options.pollIntervalMs ?? 1000}
      retries: 2
      retryBaseMs: 50
      retryCapMs: 500
      maxInlineWaitMs: 2000
      breaker: { failures: 8, halfOpenAfterMs: 2000 }
      concurrency: 4
defaults:
  output: { width: ${options.sidePx}, height: ${options.sidePx}, format: jpeg, quality: 82 }
slots:
${slots}
categories:
  ${options.category}:
    slots: [${names.join(", ")}]
`;
}
