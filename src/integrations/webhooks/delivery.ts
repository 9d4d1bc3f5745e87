import http from "node:http";
import https from "node:https";
import { isIP } from "node:net";
import { Webhook } from "standardwebhooks";
import { errorMessage, ShotlistError } from "../../domain/errors.js";
import { guardedLookup, isForbiddenAddress } from "../../intake/address-guard.js";
import type { JobContext, JobHandler, JobOutcome } from "../../queue/worker.js";
import type { Db, Queryable } from "../../store/db.js";
import { type ClaimedJob, plainAttempt } from "../../store/jobs.js";
import {
  getDeliveryToSend,
  markDeliveryFailed,
  recordDeliveryAttempt,
  type WebhookJobPayload,
} from "../../store/webhook-deliveries.js";
import { disableWebhookEndpoint } from "../../store/webhook-endpoints.js";
import { DEFAULT_RETRY_SCHEDULE, nextRetryDelayMs, type RetrySchedule } from "./schedule.js";

export interface WebhookDeliveryDeps {
  db: Db;
  /** Lets deliveries reach loopback/private addresses (SHOTLIST_ALLOW_PRIVATE_NETWORKS). */
  allowPrivateNetworks: boolean;
  /** Retry delays; default Svix's schedule with a 24 h minimum window. */
  schedule?: RetrySchedule;
  /** One attempt's whole HTTP exchange; default 10 s. */
  timeoutMs?: number;
}

/** A receiver's `Retry-After` is honoured up to this; default a day. */
const MAX_RETRY_AFTER_MS = 24 * 3_600_000;

interface Answer {
  statusCode: number;
  retryAfterMs: number | undefined;
}

/**
 * The `webhook-delivery` job: POSTs one event to one endpoint, signed per Standard Webhooks
 * with the endpoint's secret, and records the attempt. 2xx is success; 410 Gone disables the
 * endpoint; anything else is retried on the schedule (the job's `retryAfterMs`), and after
 * the last retry the delivery is failed and the job goes to needs_review.
 */
export function createWebhookDeliveryHandler(deps: WebhookDeliveryDeps): JobHandler {
  const schedule = deps.schedule ?? DEFAULT_RETRY_SCHEDULE;
  const timeoutMs = deps.timeoutMs ?? 10_000;

  return {
    async run(job: ClaimedJob, context: JobContext): Promise<JobOutcome> {
      const { deliveryId } = job.payload as WebhookJobPayload;
      const delivery = await getDeliveryToSend(deps.db, deliveryId);
      if (!delivery) {
        throw new ShotlistError("not_found", `webhook delivery ${deliveryId} does not exist`);
      }
      if (delivery.endpointClosed) {
        throw new ShotlistError("webhook_endpoint_disabled", delivery.endpointClosed, {
          status: 409,
        });
      }
      // Standard Webhooks: the body is the event; the signature covers "id.timestamp.body",
      // with a fresh timestamp per attempt (receivers refuse stale ones) and the same id.
      const body = JSON.stringify(delivery.payload);
      const now = new Date();
      const signature = new Webhook(delivery.secret).sign(delivery.id, now, body);
      const headers = {
        "content-type": "application/json",
        "user-agent": "Shotlist-Webhooks/1",
        "webhook-id": delivery.id,
        "webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
        "webhook-signature": signature,
      };
      const startedAt = Date.now();
      let answer: Answer | undefined;
      let failure: string | null = null;
      // A timer and a controller of our own, not AbortSignal.any(…, AbortSignal.timeout()): on
      // Node 20 the composed signal is only weakly held and can be collected before it fires,
      // and a receiver that never answers then holds a delivery slot for good.
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), timeoutMs);
      const forward = () => abort.abort(context.signal.reason);
      context.signal.addEventListener("abort", forward, { once: true });
      try {
        answer = await post(delivery.url, headers, body, {
          signal: abort.signal,
          allowPrivateNetworks: deps.allowPrivateNetworks,
          timeoutMs,
        });
      } catch (error) {
        if (context.signal.aborted) throw error;
        failure = errorMessage(error);
      } finally {
        clearTimeout(timer);
        context.signal.removeEventListener("abort", forward);
      }
      const durationMs = Date.now() - startedAt;
      const statusCode = answer?.statusCode ?? null;
      const attempt = { deliveryId, statusCode, durationMs };

      if (statusCode !== null && statusCode >= 200 && statusCode < 300) {
        await recordDeliveryAttempt(deps.db, {
          ...attempt,
          error: null,
          status: "succeeded",
          nextAttemptInMs: null,
        });
        context.log.info({ deliveryId, statusCode, durationMs }, "webhook delivered");
        return {
          state: "succeeded",
          attempts: [plainAttempt("succeeded", null, new Date(startedAt))],
        };
      }
      const error = failure ?? `the endpoint answered ${statusCode}`;
      if (statusCode === 410) {
        // Standard Webhooks: 410 Gone means "stop sending"; the endpoint is disabled for good.
        await deps.db.transaction(async (tx) => {
          await recordDeliveryAttempt(tx, {
            ...attempt,
            error,
            status: "failed",
            nextAttemptInMs: null,
          });
          await disableWebhookEndpoint(tx, delivery.endpointId, "the endpoint answered 410 Gone");
        });
        throw new ShotlistError(
          "webhook_endpoint_disabled",
          `endpoint ${delivery.endpointId} answered 410 Gone; it is disabled`,
          { status: 409 },
        );
      }
      const elapsedMs = Date.now() - delivery.cycleStartedAt.getTime();
      const scheduled = nextRetryDelayMs(schedule, job.attempts, elapsedMs);
      const delayMs =
        scheduled === undefined
          ? undefined
          : Math.max(scheduled, Math.min(answer?.retryAfterMs ?? 0, MAX_RETRY_AFTER_MS));
      await recordDeliveryAttempt(deps.db, {
        ...attempt,
        error,
        status: delayMs === undefined ? "failed" : "pending",
        nextAttemptInMs: delayMs ?? null,
      });
      if (delayMs === undefined) {
        throw new ShotlistError(
          "webhook_delivery_failed",
          `gave up after ${job.attempts} attempts: ${error}`,
          { status: 502 },
        );
      }
      throw new ShotlistError("webhook_delivery_failed", error, {
        status: 502,
        retryable: true,
        extra: { retryAfterMs: delayMs },
      });
    },
    async onNeedsReview(tx: Queryable, job: ClaimedJob, reason: string) {
      const { deliveryId } = job.payload as WebhookJobPayload;
      await markDeliveryFailed(tx, deliveryId, reason);
    },
  };
}

/** One POST, no redirects followed (a 3xx is a failed attempt, as in Svix). */
function post(
  url: string,
  headers: Record<string, string>,
  body: string,
  options: { signal: AbortSignal; allowPrivateNetworks: boolean; timeoutMs: number },
): Promise<Answer> {
  const target = new URL(url);
  // An IP literal never goes through the DNS lookup, so it is checked here (DESIGN §9).
  const literal = target.hostname.replace(/^\[|\]$/g, "");
  if (isIP(literal) && isForbiddenAddress(literal) && !options.allowPrivateNetworks) {
    return Promise.reject(
      new ShotlistError("webhook_url_forbidden", `${literal} is a private or reserved address`),
    );
  }
  const lookup = guardedLookup(
    options.allowPrivateNetworks,
    (hostname, address) =>
      new ShotlistError(
        "webhook_url_forbidden",
        `${hostname} resolves to ${address}, a private or reserved address`,
      ),
  );
  const client = target.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const request = client.request(
      target,
      {
        method: "POST",
        headers: { ...headers, "content-length": String(Buffer.byteLength(body)) },
        lookup,
        signal: options.signal,
      },
      (response) => {
        // The body is not needed; drain it so the socket is released.
        response.resume();
        response.on("end", () =>
          resolve({
            statusCode: response.statusCode ?? 0,
            retryAfterMs: parseRetryAfter(response.headers["retry-after"]),
          }),
        );
        response.on("error", reject);
      },
    );
    request.on("error", (error) => {
      if (options.signal.aborted && !(error instanceof ShotlistError)) {
        reject(new Error(`no answer within ${options.timeoutMs} ms`, { cause: error }));
      } else reject(error);
    });
    request.end(body);
  });
}

/** RFC 9110 §10.2.3: delay-seconds or an HTTP-date. */
export function parseRetryAfter(value: string | undefined): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}
