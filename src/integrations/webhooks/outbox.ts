import { randomBytes } from "node:crypto";
import {
  type WebhookEvent,
  type WebhookEventType,
  webhookEvent,
} from "../../domain/webhook-events.js";
import { lockProductsOfScope, type PublishScope, productsOfScope } from "../../store/assets.js";
import type { Queryable } from "../../store/db.js";
import type { ClaimedJob } from "../../store/jobs.js";
import { insertDeliveries, type NewDelivery } from "../../store/webhook-deliveries.js";
import { activeSubscriptions } from "../../store/webhook-endpoints.js";
import { attemptsOf, DEFAULT_RETRY_SCHEDULE } from "./schedule.js";

/** A Standard Webhooks msg id: unique per event × endpoint, the same on every retry. */
export const newMessageId = () => `msg_${randomBytes(16).toString("base64url")}`;

export interface PublishedSlot {
  sku: string;
  slot: string;
}

/**
 * Writes outbound webhook events in the transaction of the state change that causes them
 * (transactional outbox, DESIGN §4). Every method first reads the active endpoints (one small
 * query); with none subscribed to what happened, that is all it costs.
 */
export interface WebhookOutbox {
  /**
   * Runs before slots are published: a render's on the slots of a recipe, or the intake's on
   * one product's slots that take over recipes finished before. When `product.complete` has
   * subscribers it locks those products first — the intake's lock order (product, then slots),
   * so two publishes finishing a product together serialise and exactly one sees it complete.
   * Returns what to run after the slots are published, or nothing when nobody listens.
   */
  beforePublish(
    tx: Queryable,
    scope: PublishScope,
  ): Promise<((published: readonly PublishedSlot[]) => Promise<void>) | undefined>;
  /** `asset.needs_review` for slots just sent to the review queue. */
  needsReview(tx: Queryable, slots: readonly PublishedSlot[], reason: string): Promise<void>;
  /** `job.failed` for a job that gave up (never for a webhook delivery's own job). */
  jobFailed(tx: Queryable, job: ClaimedJob, state: string, reason: string): Promise<void>;
}

export function createWebhookOutbox(options: { publicUrl: string }): WebhookOutbox {
  const maxAttempts = attemptsOf(DEFAULT_RETRY_SCHEDULE);
  const assetUrl = (sha256: string, ext: string) => `${options.publicUrl}/a/${sha256}.${ext}`;

  async function subscribers(tx: Queryable) {
    const endpoints = await activeSubscriptions(tx);
    const byEvent = new Map<WebhookEventType, number[]>();
    for (const endpoint of endpoints) {
      for (const event of endpoint.events) {
        byEvent.set(event, [...(byEvent.get(event) ?? []), endpoint.id]);
      }
    }
    return byEvent;
  }

  async function emit(
    tx: Queryable,
    byEvent: Map<WebhookEventType, number[]>,
    events: readonly WebhookEvent[],
  ) {
    const deliveries: NewDelivery[] = events.flatMap((event) =>
      (byEvent.get(event.type) ?? []).map((endpointId) => ({
        id: newMessageId(),
        endpointId,
        event,
      })),
    );
    await insertDeliveries(tx, deliveries, maxAttempts);
  }

  return {
    async beforePublish(tx, scope) {
      const byEvent = await subscribers(tx);
      if (!byEvent.has("asset.published") && !byEvent.has("product.complete")) return undefined;
      let incomplete = new Set<string>();
      if (byEvent.has("product.complete")) {
        const products = productsOfScope(scope);
        await lockProductsOfScope(tx, scope);
        incomplete = new Set(
          (await completeness(tx, products)).filter((row) => !row.complete).map((row) => row.sku),
        );
      }
      return async (published) => {
        if (published.length === 0) return;
        const skus = [...new Set(published.map((row) => row.sku))];
        const slots = await tx.query<{
          sku: string;
          slot: string;
          required: boolean;
          state: string;
          asset_id: number | null;
          sha256: string | null;
          ext: string | null;
          width: number | null;
          height: number | null;
          recipe_hash: string;
        }>(
          `select ps.product_sku as sku, ps.slot, ps.required, ps.state, a.id as asset_id,
             a.sha256, a.ext, a.width, a.height, ps.recipe_hash
           from product_slots ps left join assets a on a.id = ps.asset_id
           where ps.product_sku = any($1::text[]) order by ps.product_sku, ps.position`,
          [skus],
        );
        const assetOf = (row: (typeof slots)[number]) =>
          // The asset columns come from a left join: all null, or (NOT NULL columns) all set.
          row.asset_id !== null &&
          row.sha256 &&
          row.ext &&
          row.width !== null &&
          row.height !== null
            ? {
                id: row.asset_id,
                sha256: row.sha256,
                url: assetUrl(row.sha256, row.ext),
                width: row.width,
                height: row.height,
              }
            : null;
        const events: WebhookEvent[] = [];
        const now = new Date();
        const just = new Set(published.map((row) => `${row.sku}\u0000${row.slot}`));
        for (const row of slots) {
          if (!just.has(`${row.sku}\u0000${row.slot}`)) continue;
          events.push(
            webhookEvent(
              "asset.published",
              { sku: row.sku, slot: row.slot, recipeHash: row.recipe_hash, asset: assetOf(row) },
              now,
            ),
          );
        }
        for (const sku of skus) {
          if (!incomplete.has(sku)) continue;
          const own = slots.filter((row) => row.sku === sku);
          if (!own.every((row) => !row.required || row.state === "published")) continue;
          const shown = own.filter((row) => row.state === "published");
          events.push(
            webhookEvent(
              "product.complete",
              { sku, slots: shown.map((row) => ({ slot: row.slot, asset: assetOf(row) })) },
              now,
            ),
          );
        }
        await emit(tx, byEvent, events);
      };
    },

    async needsReview(tx, slots, reason) {
      const byEvent = await subscribers(tx);
      if (!byEvent.has("asset.needs_review") || slots.length === 0) return;
      const now = new Date();
      await emit(
        tx,
        byEvent,
        slots.map((row) =>
          webhookEvent("asset.needs_review", { sku: row.sku, slot: row.slot, reason }, now),
        ),
      );
    },

    async jobFailed(tx, job, state, reason) {
      const byEvent = await subscribers(tx);
      if (!byEvent.has("job.failed")) return;
      await emit(tx, byEvent, [
        webhookEvent("job.failed", {
          job: { id: job.id, kind: job.kind, key: job.key, state, attempts: job.attempts },
          reason,
        }),
      ]);
    },
  };
}

/** The products a publish touches, as a subquery on $1. */
/** Per product a publish touches: are all its required slots published? */
async function completeness(tx: Queryable, products: { sql: string; param: string }) {
  return tx.query<{ sku: string; complete: boolean }>(
    `select product_sku as sku, bool_and(not required or state = 'published') as complete
     from product_slots where product_sku in (${products.sql})
     group by product_sku`,
    [products.param],
  );
}
