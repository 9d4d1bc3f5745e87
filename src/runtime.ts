import type { Logger } from "pino";
import { createFsBlobStore } from "./blobs/fs.js";
import type { BlobStore } from "./blobs/store.js";
import type { Settings } from "./config/env.js";
import { loadShotList } from "./config/shotlist.js";
import { ShotlistError } from "./domain/errors.js";
import type { ShotListConfig } from "./domain/shotlist.js";
import { createGuardedFetch } from "./intake/address-guard.js";
import type { IntakeDeps } from "./intake/submit.js";
import { createShopifyAdminClient, createShopifyGraphql } from "./integrations/shopify/client.js";
import {
  createShopifyWritebackHandler,
  enqueueShopifyWriteback,
  SHOPIFY_WRITEBACK_KIND,
} from "./integrations/shopify/writeback.js";
import { createWebhookDeliveryHandler } from "./integrations/webhooks/delivery.js";
import { createWebhookOutbox, type WebhookOutbox } from "./integrations/webhooks/outbox.js";
import type { RetrySchedule } from "./integrations/webhooks/schedule.js";
import { createMetrics, type Metrics } from "./observability/metrics.js";
import { closePixelThreads, setPixelThreads } from "./pipeline/pixel-threads.js";
import { type BuildRegistryOptions, buildProviderRegistry } from "./providers/configured.js";
import type { ProviderRegistry } from "./providers/registry.js";
import { type CallWakeups, createCallWakeups } from "./queue/call-wakeups.js";
import { createIntakeJobHandler } from "./queue/intake-job.js";
import { createProviderResiliences } from "./queue/provider-policy.js";
import { createRenderSlotHandler } from "./queue/render-slot.js";
import { type JobHandler, startWorker, type Worker } from "./queue/worker.js";
import { lockProductsOfScope, type OnPublishing } from "./store/assets.js";
import { type Db, openDb, type Queryable } from "./store/db.js";
import type { ClaimedJob } from "./store/jobs.js";
import { startMaintenance } from "./store/maintenance.js";
import { migrate } from "./store/migrate.js";
import { WEBHOOK_DELIVERY_KIND } from "./store/webhook-deliveries.js";

/** Everything one process needs, wired once: the composition root. */
export interface Runtime {
  settings: Settings;
  log: Logger;
  db: Db;
  blobs: BlobStore;
  shotList: ShotListConfig;
  providers: ProviderRegistry;
  metrics: Metrics;
  intake: IntakeDeps;
  /** Writes outbound webhook events in the transactions that cause them. */
  webhooks: WebhookOutbox;
  /** Announces, after commit, that this process changed product slots (for /i/'s caches). */
  slotChanges: SlotChanges;
  /** Providers' callbacks received here wake this process's polls of their calls. */
  callWakeups: CallWakeups;
  /** Starts a worker in this process; its wake() is called when intake creates jobs here. */
  startWorker(overrides?: {
    concurrency?: number;
    pollMs?: number;
    retryBaseMs?: number;
    /** Media status poll interval of the Shopify write-back; default 1 s. */
    shopifyPollMs?: number;
    /** Outbound webhook retry delays; default Svix's schedule over at least 24 h. */
    webhookRetrySchedule?: RetrySchedule;
    /** One webhook delivery attempt's whole HTTP exchange; default 10 s. */
    webhookTimeoutMs?: number;
    /** Deliveries the webhook lane sends at once; default SHOTLIST_WEBHOOK_CONCURRENCY. */
    webhookConcurrency?: number;
    /**
     * Job kinds this worker claims; default every kind. `webhook-delivery` runs in its own lane
     * (a second worker loop with its own concurrency) whenever it is among them.
     */
    kinds?: readonly string[];
  }): Worker;
  close(): Promise<void>;
}

/**
 * This process's changes to product slots, told after they commit: an intake saved a product's
 * plan (its slots re-planned or settled), a render job finished (it published or gave up).
 * Other processes' changes are not seen here; readers bound their staleness with a TTL.
 */
export interface SlotChanges {
  /** `skus`: the products whose slots changed; undefined: any product may have changed. */
  notify(skus?: readonly string[]): void;
  /** Returns the function that unsubscribes. */
  subscribe(listener: (skus: readonly string[] | undefined) => void): () => void;
}

export function createSlotChanges(): SlotChanges {
  const listeners = new Set<(skus: readonly string[] | undefined) => void>();
  return {
    notify(skus) {
      for (const listener of listeners) listener(skus);
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/**
 * The blob store SHOTLIST_STORAGE names: a folder, or `s3://bucket/prefix` (DESIGN §11) with the
 * endpoint of an S3-compatible server in AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL, the region in
 * AWS_REGION (default us-east-1) and credentials from the AWS SDK's usual sources. The SDK is
 * loaded only for S3.
 */
export async function createBlobStore(
  storage: string,
  env: Readonly<Record<string, string | undefined>> = {},
): Promise<BlobStore> {
  if (!storage.startsWith("s3://")) return createFsBlobStore(storage);
  const { createS3BlobStore, parseS3Url } = await import("./blobs/s3.js");
  let location: ReturnType<typeof parseS3Url>;
  try {
    location = parseS3Url(storage);
  } catch (error) {
    throw new ShotlistError("invalid_env", `SHOTLIST_STORAGE: ${(error as Error).message}`);
  }
  const endpoint = env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
  if (endpoint !== undefined && !URL.canParse(endpoint)) {
    throw new ShotlistError(
      "invalid_env",
      `AWS_ENDPOINT_URL: expected the URL of an S3-compatible server, got ${JSON.stringify(endpoint.slice(0, 80))}`,
    );
  }
  try {
    return await createS3BlobStore({
      ...location,
      endpoint,
      region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION,
      credentials:
        env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
          ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY }
          : undefined,
    });
  } catch (error) {
    throw new ShotlistError("invalid_env", `SHOTLIST_STORAGE: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

export interface RuntimeOptions {
  /** Adapter factories by kind; default PROVIDER_FACTORIES (tests and benchmarks swap or add one). */
  providerFactories?: BuildRegistryOptions["factories"];
  /**
   * Pixel threads when SHOTLIST_PIXEL_THREADS is unset: `start` and `serve` pass the cores (their
   * event loop answers HTTP); default 0, cut-outs on the main thread (decision 0009).
   */
  pixelThreads?: number;
}

export async function createRuntime(
  settings: Settings,
  log: Logger,
  options: RuntimeOptions = {},
): Promise<Runtime> {
  const shotList = loadShotList(settings.shotListPath);
  setPixelThreads(settings.pixelThreads ?? options.pixelThreads ?? 0);
  const providers = buildProviderRegistry(shotList, {
    env: settings.env,
    maxPixels: settings.maxPixels,
    callbackBaseUrl: settings.providerCallbackBaseUrl,
    fetchOutput: createGuardedFetch({ allowPrivateNetworks: settings.allowPrivateNetworks }),
    ...(options.providerFactories ? { factories: options.providerFactories } : {}),
  });
  const callWakeups = createCallWakeups();
  const blobs = await createBlobStore(settings.storage, settings.env);
  // Breakers and bulkheads are per process, shared by every worker loop of it.
  const resilience = createProviderResiliences(shotList);
  const db = await openDb(settings);
  await migrate(db);
  const metrics = createMetrics(db);
  // Embedded only: PGlite runs no autovacuum (see src/store/maintenance.ts).
  const maintenance = startMaintenance(db, log);
  const workers = new Set<Worker>();
  const webhooks = createWebhookOutbox({ publicUrl: settings.publicUrl });
  const slotChanges = createSlotChanges();
  // Shopify write-back (DESIGN §4): only when a shop and a token are configured.
  const shopify = settings.shopifyWriteback;
  // One function for every publish, a render's or an intake's takeover of a finished recipe.
  const onPublishing: OnPublishing = async (tx, scope) => {
    // The write-back is enqueued by whichever publish completes the product: lock first, so
    // two renders finishing one product at once cannot both see the other's slot as pending.
    if (shopify) await lockProductsOfScope(tx, scope);
    const afterWebhooks = await webhooks.beforePublish(tx, scope);
    return async (published) => {
      if (shopify) {
        await enqueueShopifyWriteback(
          tx,
          published.map((row) => row.sku),
          settings.maxAttempts,
        );
      }
      await afterWebhooks?.(published);
    };
  };
  const intake: IntakeDeps = {
    db,
    blobs,
    shotList,
    providers,
    limits: {
      maxPixels: settings.maxPixels,
      maxImageBytes: settings.maxImageBytes,
      maxAttempts: settings.maxAttempts,
      allowPrivateNetworks: settings.allowPrivateNetworks,
    },
    onPublishing,
    onJobsCreated: (count) => {
      maintenance.noteChanges(count);
      for (const worker of workers) worker.wake();
    },
    onProductSaved: (sku) => slotChanges.notify([sku]),
  };
  return {
    settings,
    log,
    db,
    blobs,
    shotList,
    providers,
    metrics,
    intake,
    webhooks,
    slotChanges,
    callWakeups,
    startWorker(overrides = {}) {
      const writeback: Record<string, JobHandler> = shopify
        ? {
            [SHOPIFY_WRITEBACK_KIND]: createShopifyWritebackHandler({
              db,
              target: shopify,
              graphql: createShopifyGraphql(createShopifyAdminClient(shopify)),
              publicUrl: settings.publicUrl,
              pollMs: overrides.shopifyPollMs,
            }),
          }
        : {};
      const handlers: Record<string, JobHandler> = {
        render: createRenderSlotHandler({
          blobs,
          providers,
          db,
          paid: { db, blobs, resilience, log, callWakeups },
          maxPixels: settings.maxPixels,
          onLinkFinished: (event) =>
            metrics.linkDuration.observe(
              { provider: event.provider, slot: event.slot, outcome: event.outcome },
              event.durationMs / 1000,
            ),
          onPublishing,
          onNeedsReview: (tx, slots, reason) => webhooks.needsReview(tx, slots, reason),
        }),
        intake: createIntakeJobHandler(intake),
        [WEBHOOK_DELIVERY_KIND]: createWebhookDeliveryHandler({
          db,
          allowPrivateNetworks: settings.allowPrivateNetworks,
          schedule: overrides.webhookRetrySchedule,
          timeoutMs: overrides.webhookTimeoutMs,
        }),
        ...writeback,
      };
      const wanted = (kind: string) => !overrides.kinds || overrides.kinds.includes(kind);
      const handlersOf = (lane: boolean) =>
        Object.fromEntries(
          Object.entries(handlers).filter(
            ([kind]) => wanted(kind) && (kind === WEBHOOK_DELIVERY_KIND) === lane,
          ),
        );
      const common = {
        db,
        log,
        leaseMs: settings.leaseMs,
        pollMs: overrides.pollMs,
        retryBaseMs: overrides.retryBaseMs ?? settings.retryBaseMs,
        // Never a webhook about a webhook delivery: a failing receiver would feed itself.
        onGaveUp: (tx: Queryable, job: ClaimedJob, state: "needs_review", reason: string) =>
          job.kind === WEBHOOK_DELIVERY_KIND
            ? Promise.resolve()
            : webhooks.jobFailed(tx, job, state, reason),
        onFinished: (job: ClaimedJob, state: string, durationMs: number) => {
          maintenance.noteChanges(1);
          // A render job's payload names recipes, not products: forget every product's cached
          // slot (a handful of queries to refill, at the rate jobs finish).
          if (job.kind === "render") slotChanges.notify();
          metrics.jobDuration.observe({ kind: job.kind, state }, durationMs / 1000);
        },
      };
      // Deliveries get their own lane (DESIGN §4): claimed in run_at order with renders they
      // would wait behind an import's backlog, and a receiver that hangs for its whole timeout
      // would hold a render's place. Its concurrency bounds how many hanging receivers it takes
      // to delay the others.
      const parts: Worker[] = [];
      const renderHandlers = handlersOf(false);
      if (Object.keys(renderHandlers).length > 0 || !wanted(WEBHOOK_DELIVERY_KIND)) {
        parts.push(
          startWorker({
            ...common,
            handlers: renderHandlers,
            concurrency: overrides.concurrency ?? settings.workerConcurrency,
          }),
        );
      }
      if (wanted(WEBHOOK_DELIVERY_KIND)) {
        parts.push(
          startWorker({
            ...common,
            handlers: handlersOf(true),
            concurrency: overrides.webhookConcurrency ?? settings.webhookConcurrency,
          }),
        );
      }
      const worker = combineWorkers(parts);
      // close() stops every worker it started; stopping one twice is harmless.
      workers.add(worker);
      return worker;
    },
    async close() {
      await Promise.all([...workers].map((worker) => worker.stop()));
      await maintenance.stop();
      await db.close();
      // The pool it sized (process-wide) goes with it: its threads hold no work now.
      await closePixelThreads();
    },
  };
}

/** Several worker loops of one process (the render lane and the delivery lane) as one Worker. */
function combineWorkers(parts: readonly Worker[]): Worker {
  return {
    workerId: parts.map((part) => part.workerId).join(","),
    wake: () => {
      for (const part of parts) part.wake();
    },
    running: () => parts.reduce((sum, part) => sum + part.running(), 0),
    async stop() {
      await Promise.all(parts.map((part) => part.stop()));
    },
  };
}
