import type { FastifyInstance } from "fastify";
import { ShotlistError } from "../../domain/errors.js";
import { type FalJsonWebKey, verifyFalWebhook } from "../../providers/fal/webhook.js";
import type { CallContext, ImageProvider } from "../../providers/provider.js";
import { verifyReplicateWebhook } from "../../providers/replicate/webhook.js";
import type { Runtime } from "../../runtime.js";
import type { ProviderCallRow } from "../../store/provider-calls.js";
import {
  findCallByProviderId,
  recordProviderWebhook,
  wakeJob,
} from "../../store/provider-webhooks.js";
import { WEBHOOK_BODY_LIMIT_BYTES } from "./webhooks.js";

/** A Replicate-style adapter: Standard Webhooks signatures under the account's secret. */
interface SecretSigned extends ImageProvider {
  webhookSecret(context: CallContext): Promise<string>;
}
/** A fal-style adapter: Ed25519 signatures by the keys of a published JWKS. */
interface KeySigned extends ImageProvider {
  webhookKeys(context: CallContext): Promise<FalJsonWebKey[]>;
}

const isSecretSigned = (provider: ImageProvider): provider is SecretSigned =>
  typeof (provider as Partial<SecretSigned>).webhookSecret === "function";
const isKeySigned = (provider: ImageProvider): provider is KeySigned =>
  typeof (provider as Partial<KeySigned>).webhookKeys === "function";

/** Statuses after which the call will not change: worth a poll now. */
const TERMINAL: ReadonlySet<string> = new Set(["succeeded", "failed", "canceled", "aborted"]);

/** fal: "cache the JWKS for up to 24 hours". Replicate's secret changes only when rotated. */
const KEYS_TTL_MS = 24 * 60 * 60_000;
/** A signature that fails against cached keys refetches them at most this often (rotation). */
const REFRESH_AFTER_FAILURE_MS = 60_000;
/** Fetching a secret or JWKS must not hold the provider's callback for long. */
const KEY_FETCH_TIMEOUT_MS = 5_000;

/**
 * Keys fetched once and cached: the next callback is verified without a request. After a
 * failed verification the keys are refetched (once a minute at most) and tried again, so a
 * rotation on the provider's side heals without a restart and a flood of forged callbacks
 * cannot make us hammer the provider.
 */
function keyCache<T>(fetchKeys: () => Promise<T>) {
  let cached: { value: Promise<T>; at: number } | undefined;
  const load = () => {
    const value = fetchKeys();
    cached = { value, at: Date.now() };
    value.catch(() => {
      if (cached?.value === value) cached = undefined;
    });
    return value;
  };
  return {
    get: (): Promise<T> => (cached && Date.now() - cached.at < KEYS_TTL_MS ? cached.value : load()),
    /** Fresh keys if the cached ones are old enough to be worth refetching, else undefined. */
    refresh: (): Promise<T> | undefined =>
      !cached || Date.now() - cached.at > REFRESH_AFTER_FAILURE_MS ? load() : undefined,
  };
}

interface VerifiedCallback {
  deliveryId: string;
  providerId: string;
  status: string;
}

/**
 * Callbacks of async providers (docs/providers.md, "Callbacks from async providers"): `POST /webhooks/providers/{name}`,
 * no API key — the provider's signature is the auth. Verified on the raw bytes with the adapter's
 * verifier, matched to its ledger row by the provider's id, recorded, and answered 200 at once:
 * the callback only wakes the call (this process's poll pause, or the job's `run_at` when it
 * waits between attempts) and the worker's poll records the outcome, so the ledger keeps one
 * writer. Bad signature → 401, unknown prediction → 404 (recorded), replay → 200 `duplicate`.
 */
export function providerWebhookRoutes(app: FastifyInstance, runtime: Runtime) {
  const log = runtime.log.child({ component: "provider-webhooks" });
  const caches = new Map<string, ReturnType<typeof keyCache<unknown>>>();
  const context = (): CallContext => ({ signal: AbortSignal.timeout(KEY_FETCH_TIMEOUT_MS) });

  function cacheOf<T>(provider: string, fetchKeys: () => Promise<T>) {
    let cache = caches.get(provider);
    if (!cache) {
      cache = keyCache<unknown>(fetchKeys);
      caches.set(provider, cache);
    }
    return cache as ReturnType<typeof keyCache<T>>;
  }

  /** Verifies with cached keys; on a bad signature, once more with fresh ones. */
  async function withKeys<K, R>(
    cache: ReturnType<typeof keyCache<K>>,
    verify: (keys: K) => Promise<R>,
  ): Promise<R> {
    try {
      return await verify(await keysOrUnavailable(cache.get()));
    } catch (error) {
      const fresh = error instanceof ShotlistError && error.code === "invalid_signature";
      const refreshed = fresh ? cache.refresh() : undefined;
      if (!refreshed) throw error;
      return verify(await keysOrUnavailable(refreshed));
    }
  }

  async function keysOrUnavailable<K>(keys: Promise<K>): Promise<K> {
    try {
      return await keys;
    } catch (cause) {
      // We cannot tell a good callback from a forged one: 503, so the provider retries later.
      throw new ShotlistError(
        "webhook_not_configured",
        `the provider's webhook signing keys could not be fetched: ${(cause as Error).message}`,
        { status: 503, cause },
      );
    }
  }

  async function verify(
    provider: ImageProvider,
    headers: Record<string, string | string[] | undefined>,
    rawBody: Buffer,
    lookUp: (providerId: string) => Promise<boolean>,
  ): Promise<VerifiedCallback> {
    if (isSecretSigned(provider)) {
      const cache = cacheOf(provider.name, () => provider.webhookSecret(context()));
      const event = await withKeys(cache, (secret) =>
        verifyReplicateWebhook({ headers, rawBody, secrets: secret, isKnownPrediction: lookUp }),
      );
      return { deliveryId: event.webhookId, providerId: event.predictionId, status: event.status };
    }
    if (isKeySigned(provider)) {
      const cache = cacheOf(provider.name, () => provider.webhookKeys(context()));
      const event = await withKeys(cache, (keys) =>
        verifyFalWebhook({ headers, rawBody, keys, isKnownRequest: lookUp }),
      );
      // fal sends no delivery id: a replay repeats the request id and the signed timestamp.
      const timestamp = String(headers["x-fal-webhook-timestamp"] ?? "");
      return {
        deliveryId: `${event.requestId}@${timestamp}`,
        providerId: event.requestId,
        status: event.status,
      };
    }
    throw new ShotlistError(
      "webhook_not_configured",
      `provider "${provider.name}" does not send signed callbacks`,
      { status: 404 },
    );
  }

  app.register(async (scope) => {
    // Signatures are over the exact bytes sent, so this route takes the body unparsed.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer" }, (_request, body, done) =>
      done(null, body),
    );

    scope.post<{ Params: { name: string } }>(
      "/webhooks/providers/:name",
      { bodyLimit: WEBHOOK_BODY_LIMIT_BYTES },
      async (request, reply) => {
        const { name } = request.params;
        if (!runtime.providers.names().includes(name)) {
          throw new ShotlistError("not_found", `no provider named "${name}" is configured`, {
            status: 404,
          });
        }
        const provider = runtime.providers.get(name);
        const raw = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
        // What the verifier's ledger lookup found (it runs after the signature check).
        const lookup: { providerId?: string; call?: ProviderCallRow } = {};
        const lookUp = async (providerId: string) => {
          lookup.providerId = providerId;
          lookup.call = await findCallByProviderId(runtime.db, name, providerId);
          return lookup.call !== undefined;
        };
        let callback: VerifiedCallback;
        try {
          callback = await verify(provider, request.headers, raw, lookUp);
        } catch (error) {
          const providerId = lookup.providerId;
          if (error instanceof ShotlistError && error.code === "unknown_prediction" && providerId) {
            // Signed by the provider but no ledger row knows it (another deployment's, or one
            // whose row was purged): recorded for the operator, answered 404, nothing else.
            const deliveryId = String(
              request.headers["webhook-id"] ??
                `${providerId}@${String(request.headers["x-fal-webhook-timestamp"] ?? "")}`,
            );
            await recordProviderWebhook(runtime.db, {
              provider: name,
              deliveryId,
              providerId,
              callId: null,
              status: "unknown",
            });
            log.warn({ provider: name, providerId }, "callback for an unknown call");
          }
          throw error;
        }
        const known = lookup.call;
        if (!known) throw new ShotlistError("internal", "verified callback without its call");
        const first = await recordProviderWebhook(runtime.db, {
          provider: name,
          deliveryId: callback.deliveryId,
          providerId: callback.providerId,
          callId: known.id,
          status: callback.status,
        });
        if (!first) {
          return reply.code(200).send({ status: "duplicate", callId: known.id });
        }
        if (TERMINAL.has(callback.status)) {
          const woke = known.job_id === null ? false : await wakeJob(runtime.db, known.job_id);
          runtime.callWakeups.wake(known.id);
          if (woke) runtime.intake.onJobsCreated?.(0);
        }
        log.debug(
          { provider: name, callId: known.id, status: callback.status },
          "callback received",
        );
        return reply.code(200).send({ status: "accepted", callId: known.id });
      },
    );
  });
}
