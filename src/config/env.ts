import { resolve } from "node:path";
import { z } from "zod";
import { ShotlistError } from "../domain/errors.js";

const flag = z
  .enum(["0", "1", "true", "false", ""])
  .optional()
  .transform((value) => value === "1" || value === "true");

const envSchema = z.object({
  /** PostgreSQL URL; unset → PGlite in `$SHOTLIST_DATA_DIR/db`. */
  SHOTLIST_DATABASE_URL: z.string().url().optional(),
  /** Embedded data folder; default `./.shotlist`. */
  SHOTLIST_DATA_DIR: z.string().min(1).default(".shotlist"),
  /** Blob store: a folder path (default `$SHOTLIST_DATA_DIR/assets`) or `s3://bucket/prefix`. */
  SHOTLIST_STORAGE: z.string().min(1).optional(),
  /** Shot-list config file; default the shipped one. */
  SHOTLIST_CONFIG: z.string().min(1).optional(),
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  HOST: z.string().min(1).default("127.0.0.1"),
  /**
   * Base URL written into asset URLs; default `http://HOST:PORT`. When set, async providers
   * (Replicate, fal) are asked to call back at `<it>/webhooks/providers/<name>`; unset, they are
   * only polled (the default is not reachable from the provider).
   */
  SHOTLIST_PUBLIC_URL: z.string().url().optional(),
  /** Jobs one worker process runs at once; default 2 (one per core of a small machine). */
  SHOTLIST_WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(2),
  /**
   * Worker threads for the pipeline's per-pixel JavaScript (background removal), so it neither
   * blocks the event loop nor runs two jobs' cut-outs on one core; 0 = on the main thread.
   * Unset: the machine's cores for `start` and `serve` (they answer HTTP), 0 for the rest.
   */
  SHOTLIST_PIXEL_THREADS: z.coerce.number().int().min(0).max(64).optional(),
  /**
   * Outbound webhook deliveries one worker process sends at once, in their own lane beside the
   * render jobs (so they never wait behind a render backlog and a hanging receiver never holds
   * render capacity); default 4. Each one waits on the network, not the CPU.
   */
  SHOTLIST_WEBHOOK_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(4),
  /** How long a claimed job is held before another worker may take it over; default 30 s. */
  SHOTLIST_LEASE_MS: z.coerce.number().int().min(1000).max(3_600_000).default(30_000),
  /** Attempts before a job goes to needs_review; default 5. */
  SHOTLIST_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(5),
  /** First retry delay; later ones double (full jitter, capped at 5 min). Default 1 s. */
  SHOTLIST_RETRY_BASE_MS: z.coerce.number().int().min(1).max(600_000).default(1_000),
  /** Decompression-bomb guard for every decoded image; default 40 MP. */
  SHOTLIST_MAX_PIXELS: z.coerce.number().int().min(1).default(40_000_000),
  /** Largest accepted reference image, in bytes; default 25 MiB. */
  SHOTLIST_MAX_IMAGE_BYTES: z.coerce
    .number()
    .int()
    .min(1)
    .default(25 * 1024 * 1024),
  /**
   * Lets reference-image fetches, provider output-file fetches and outbound webhook endpoints
   * reach loopback/private addresses. Tests only; default off. Security: on, anyone who can POST can probe your network.
   */
  SHOTLIST_ALLOW_PRIVATE_NETWORKS: flag,
  /**
   * HMAC key for signed /i/ rendition URLs (custom options). Unset → only bare and preset URLs
   * are served. Security: at least 32 random bytes; anyone with it can make the origin render.
   */
  SHOTLIST_SIGNING_KEY: z.string().min(16).optional(),
  /** How long an /i/ request waits for a slot's in-progress generation; default 2000 ms. */
  SHOTLIST_ONDEMAND_DEADLINE_MS: z.coerce.number().int().min(0).max(60_000).default(2_000),
  /**
   * Memory for hot /i/ answers: rendition and asset bytes kept in this process, least recently
   * used first out; default 64 MiB; 0 turns the cache off. The bound is on the bytes held, per
   * process (each server process of a fleet has its own).
   */
  SHOTLIST_ONDEMAND_CACHE_BYTES: z.coerce
    .number()
    .int()
    .min(0)
    .default(64 * 1024 * 1024),
  /**
   * How long a process reuses a published slot's answer (which asset it shows) without asking
   * the database; default 2000 ms; 0 asks every time; never more than the alias's max-age. A
   * change made by another process is seen within this time; one made by this process at once.
   */
  SHOTLIST_ONDEMAND_SLOT_TTL_MS: z.coerce.number().int().min(0).max(60_000).default(2_000),
  /** Shopify app secret: signs `X-Shopify-Hmac-Sha256`. Unset → POST /webhooks/shopify answers 503. */
  SHOTLIST_SHOPIFY_WEBHOOK_SECRET: z.string().min(1).optional(),
  /**
   * Shopify product_type → shot-list category, e.g. `T-Shirts=apparel,Sneakers=footwear,*=home`
   * (`*` = every other type). Default: a product_type equal to a category name (any case).
   */
  SHOTLIST_SHOPIFY_CATEGORIES: z.string().optional(),
  /** Shopify write-back target shop, e.g. `example.myshopify.com`. Unset → no write-back. */
  SHOTLIST_SHOPIFY_SHOP: z.string().min(1).optional(),
  /** Admin API access token of the app installed on that shop. Unset → no write-back. */
  SHOTLIST_SHOPIFY_ACCESS_TOKEN: z.string().min(1).optional(),
  /** Base URL that replaces `https://<shop>` for Admin API calls (tests, proxies). */
  SHOTLIST_SHOPIFY_API_URL: z.string().url().optional(),
  /**
   * Standard Webhooks secret(s) (`whsec_…`) for /webhooks/intake (DESIGN §11); during rotation
   * several, space-separated (commas are accepted too); any one verifies.
   */
  SHOTLIST_INTAKE_WEBHOOK_SECRET: z.string().optional(),
  /** `max-age` of the /i/ current-asset alias (DESIGN §3); default 60 s. */
  SHOTLIST_ALIAS_MAX_AGE_S: z.coerce.number().int().min(1).max(86_400).default(60),
  /** pino level; default info. */
  SHOTLIST_LOG_LEVEL: z
    .enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"])
    .default("info"),
});

export interface Settings {
  databaseUrl: string | undefined;
  dataDir: string;
  storage: string;
  shotListPath: string | undefined;
  port: number;
  host: string;
  publicUrl: string;
  /**
   * SHOTLIST_PUBLIC_URL when it is set, else undefined: async providers (Replicate, fal) are
   * asked to call back at `<it>/webhooks/providers/<name>` only when Shotlist says it is
   * reachable; otherwise they are polled.
   */
  providerCallbackBaseUrl: string | undefined;
  workerConcurrency: number;
  /** SHOTLIST_PIXEL_THREADS; undefined = the command's default (RuntimeOptions.pixelThreads). */
  pixelThreads: number | undefined;
  webhookConcurrency: number;
  leaseMs: number;
  maxAttempts: number;
  retryBaseMs: number;
  maxPixels: number;
  maxImageBytes: number;
  allowPrivateNetworks: boolean;
  logLevel: z.infer<typeof envSchema>["SHOTLIST_LOG_LEVEL"];
  signingKey: string | undefined;
  onDemandDeadlineMs: number;
  onDemandCacheBytes: number;
  onDemandSlotTtlMs: number;
  shopifyWebhookSecret: string | undefined;
  shopifyCategories: string | undefined;
  intakeWebhookSecrets: string[];
  /** Shopify write-back target; undefined when shop or token is unset. */
  shopifyWriteback: { shop: string; accessToken: string; apiUrl: string | undefined } | undefined;
  aliasMaxAgeS: number;
  /**
   * The environment these settings were read from: provider API keys are looked up in it by
   * the variable names the shot list's `providers.<name>.apiKeyEnv` gives (never in the file).
   */
  env: Readonly<Record<string, string | undefined>>;
}

/** Reads deployment settings from the environment, with one clear error per bad variable. */
export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map(
      (issue) => `${issue.path.join(".")}: ${issue.message}`,
    );
    throw new ShotlistError("invalid_env", `invalid environment: ${problems.join("; ")}`);
  }
  const values = parsed.data;
  const dataDir = resolve(values.SHOTLIST_DATA_DIR);
  const publicHost = values.HOST === "0.0.0.0" || values.HOST === "::" ? "127.0.0.1" : values.HOST;
  return {
    databaseUrl: values.SHOTLIST_DATABASE_URL,
    dataDir,
    storage: values.SHOTLIST_STORAGE ?? resolve(dataDir, "assets"),
    shotListPath: values.SHOTLIST_CONFIG,
    port: values.PORT,
    host: values.HOST,
    publicUrl: (values.SHOTLIST_PUBLIC_URL ?? `http://${publicHost}:${values.PORT}`).replace(
      /\/+$/,
      "",
    ),
    providerCallbackBaseUrl: values.SHOTLIST_PUBLIC_URL?.replace(/\/+$/, ""),
    workerConcurrency: values.SHOTLIST_WORKER_CONCURRENCY,
    pixelThreads: values.SHOTLIST_PIXEL_THREADS,
    webhookConcurrency: values.SHOTLIST_WEBHOOK_CONCURRENCY,
    leaseMs: values.SHOTLIST_LEASE_MS,
    maxAttempts: values.SHOTLIST_MAX_ATTEMPTS,
    retryBaseMs: values.SHOTLIST_RETRY_BASE_MS,
    maxPixels: values.SHOTLIST_MAX_PIXELS,
    maxImageBytes: values.SHOTLIST_MAX_IMAGE_BYTES,
    allowPrivateNetworks: values.SHOTLIST_ALLOW_PRIVATE_NETWORKS,
    logLevel: values.SHOTLIST_LOG_LEVEL,
    signingKey: values.SHOTLIST_SIGNING_KEY,
    onDemandDeadlineMs: values.SHOTLIST_ONDEMAND_DEADLINE_MS,
    onDemandCacheBytes: values.SHOTLIST_ONDEMAND_CACHE_BYTES,
    onDemandSlotTtlMs: Math.min(
      values.SHOTLIST_ONDEMAND_SLOT_TTL_MS,
      values.SHOTLIST_ALIAS_MAX_AGE_S * 1000,
    ),
    shopifyWebhookSecret: values.SHOTLIST_SHOPIFY_WEBHOOK_SECRET,
    shopifyCategories: values.SHOTLIST_SHOPIFY_CATEGORIES,
    intakeWebhookSecrets: (values.SHOTLIST_INTAKE_WEBHOOK_SECRET ?? "")
      .split(/[\s,]+/)
      .map((secret) => secret.trim())
      .filter((secret) => secret.length > 0),
    shopifyWriteback:
      values.SHOTLIST_SHOPIFY_SHOP && values.SHOTLIST_SHOPIFY_ACCESS_TOKEN
        ? {
            shop: values.SHOTLIST_SHOPIFY_SHOP,
            accessToken: values.SHOTLIST_SHOPIFY_ACCESS_TOKEN,
            apiUrl: values.SHOTLIST_SHOPIFY_API_URL?.replace(/\/+$/, ""),
          }
        : undefined,
    aliasMaxAgeS: values.SHOTLIST_ALIAS_MAX_AGE_S,
    env,
  };
}
