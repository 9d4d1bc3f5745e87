import { generateKeyPairSync, randomUUID, sign } from "node:crypto";
import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import { type FalJsonWebKey, falSignedMessage } from "../../src/providers/fal/webhook.js";
import {
  drawImage,
  FaultScript,
  faultyImage,
  HTML_ERROR_PAGE,
  type HttpFault,
  type ImageFormat,
  type JobFault,
  readBody,
  sendJson,
  trackSockets,
} from "./provider-faults.js";

/**
 * A fake fal queue API (https://fal.ai/docs/documentation/model-apis/inference/queue) on
 * loopback: `POST /{owner}/{alias}[/{path}]` queues a request (`?fal_webhook=` for a callback)
 * and answers `{request_id, response_url, status_url, cancel_url, queue_position}`;
 * `GET /{owner}/{alias}/requests/{id}/status` moves IN_QUEUE → IN_PROGRESS → COMPLETED over
 * polls; `GET /{owner}/{alias}/requests/{id}` answers the result (`{images: [{url, width,
 * height, content_type}], seed, has_nsfw_concepts}`) or the request's stored error (422 with a
 * typed `detail` array, e.g. `content_policy_violation`, as fal's model errors are). Auth is
 * `Authorization: Key <key>`. An empty account is fal's 403 "Exhausted balance". Webhooks are
 * POSTed `{request_id, gateway_request_id, status: OK|ERROR, payload, error}` and signed with
 * Ed25519 (X-Fal-Webhook-* headers); the public key is at `/.well-known/jwks.json`.
 * Images are real, made with sharp, served under `/files/`.
 */
export interface FakeFalRequest {
  id: string;
  endpoint: string;
  input: Record<string, unknown>;
  status: "IN_QUEUE" | "IN_PROGRESS" | "COMPLETED";
  polls: number;
  webhook: string | undefined;
  fault: JobFault | undefined;
  nsfw: boolean;
  queuedAtMs: number;
  /** Set once COMPLETED: the stored answer of `GET …/requests/{id}`. */
  result: { status: number; body: unknown; headers?: Record<string, string> } | undefined;
}

export interface FalWebhookDelivery {
  requestId: string;
  answeredStatus: number;
  headers: Record<string, string>;
  body: string;
}

export interface FakeFal {
  url: string;
  key: string;
  /** The account's user id, which fal signs into webhooks. */
  userId: string;
  jwksUrl: string;
  requests: Map<string, FakeFalRequest>;
  calls: Record<"submit" | "status" | "result" | "file" | "jwks", number>;
  /** Every request received, in order (files and the JWKS included). */
  log: { method: string; path: string }[];
  webhookDeliveries: FalWebhookDelivery[];
  failRequests(fault: HttpFault, count?: number, retryAfterSeconds?: number): void;
  failNextRequest(fault: JobFault): void;
  /** The next request's image comes back blacked out with `has_nsfw_concepts: [true]`. */
  flagNextAsNsfw(): void;
  /** Status polls a request needs before COMPLETED; default 2. */
  pollsToComplete: number;
  /**
   * Time a request takes to run, ms; default 0. When > 0 a request is COMPLETED once this has
   * passed since it was queued (polled or not, `pollsToComplete` ignored), and its webhook is
   * sent then.
   */
  processingMs: number;
  close(): Promise<void>;
}

export interface FakeFalOptions {
  key?: string;
  /** Endpoint ids served, with the inputs each requires; default flux/dev and flux-pro/kontext. */
  endpoints?: Record<string, { requires: readonly string[] }>;
}

const DEFAULT_ENDPOINTS: Record<string, { requires: readonly string[] }> = {
  "fal-ai/flux/dev": { requires: ["prompt"] },
  "fal-ai/flux-pro/kontext": { requires: ["prompt", "image_url"] },
};

function appOf(endpoint: string): string {
  return endpoint.split("/").slice(0, 2).join("/");
}

export async function startFakeFal(options: FakeFalOptions = {}): Promise<FakeFal> {
  const key = options.key ?? `${randomUUID()}:${randomUUID().replaceAll("-", "")}`;
  const userId = `user_${randomUUID().slice(0, 8)}`;
  const endpoints = options.endpoints ?? DEFAULT_ENDPOINTS;
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const jwk = publicKey.export({ format: "jwk" }) as FalJsonWebKey;
  const requests = new Map<string, FakeFalRequest>();
  const files = new Map<string, { bytes: Buffer; contentType: string }>();
  const calls = { submit: 0, status: 0, result: 0, file: 0, jwks: 0 };
  const log: { method: string; path: string }[] = [];
  const webhookDeliveries: FalWebhookDelivery[] = [];
  const httpFaults = new FaultScript<HttpFault>();
  const jobFaults: JobFault[] = [];
  let nsfwNext = false;
  let url = "";

  const urlsOf = (request: FakeFalRequest) => {
    const base = `${url}/${appOf(request.endpoint)}/requests/${request.id}`;
    return { response_url: base, status_url: `${base}/status`, cancel_url: `${base}/cancel` };
  };

  async function complete(request: FakeFalRequest): Promise<void> {
    request.status = "COMPLETED";
    const { input } = request;
    const missing = (endpoints[request.endpoint]?.requires ?? []).filter(
      (field) => input[field] === undefined,
    );
    if (missing.length > 0) {
      request.result = {
        status: 422,
        body: {
          detail: missing.map((field) => ({
            loc: ["body", field],
            msg: "Field required",
            type: "missing",
          })),
        },
      };
      return;
    }
    if (request.fault === "prediction_failed") {
      // fal's platform error shape (request-errors): a flat detail and a typed error_type.
      request.result = {
        status: 503,
        body: {
          detail: "The runner disconnected during processing",
          error_type: "runner_disconnected",
        },
        headers: { "x-fal-error-type": "runner_disconnected" },
      };
      return;
    }
    if (request.fault === "content_policy") {
      request.result = {
        status: 422,
        body: {
          detail: [
            {
              loc: ["body", "prompt"],
              msg: "The content was flagged by a content checker.",
              type: "content_policy_violation",
              url: "https://docs.fal.ai/errors#content_policy_violation",
              input: input.prompt,
            },
          ],
        },
      };
      return;
    }
    const size = input.image_size as { width?: number; height?: number } | undefined;
    const width = size?.width ?? 1024;
    const height = size?.height ?? 768;
    const format = (
      ["jpeg", "png", "webp"].includes(String(input.output_format)) ? input.output_format : "jpeg"
    ) as ImageFormat;
    const seed = Number(input.seed ?? 0);
    const file = request.fault
      ? await faultyImage(request.fault, width, height, format, seed)
      : { bytes: await drawImage(width, height, format, seed), contentType: `image/${format}` };
    const path = `/files/${request.id}/output.${format}`;
    files.set(path, file);
    request.result = {
      status: 200,
      body: {
        images: [{ url: `${url}${path}`, width, height, content_type: file.contentType }],
        timings: { inference: 0.01 },
        seed,
        has_nsfw_concepts: [request.nsfw],
        prompt: input.prompt,
      },
    };
  }

  async function deliver(request: FakeFalRequest): Promise<void> {
    if (!request.webhook || !request.result) return;
    const ok = request.result.status === 200;
    const body = JSON.stringify({
      request_id: request.id,
      gateway_request_id: request.id,
      status: ok ? "OK" : "ERROR",
      ...(ok ? {} : { error: `Invalid status code: ${request.result.status}` }),
      payload: request.result.body,
    });
    const timestamp = String(Math.floor(Date.now() / 1000));
    const signature = sign(
      null,
      falSignedMessage(request.id, userId, timestamp, Buffer.from(body)),
      privateKey,
    ).toString("hex");
    const headers = {
      "content-type": "application/json",
      "x-fal-webhook-request-id": request.id,
      "x-fal-webhook-user-id": userId,
      "x-fal-webhook-timestamp": timestamp,
      "x-fal-webhook-signature": signature,
    };
    let answeredStatus = 0;
    try {
      const answer = await fetch(request.webhook, { method: "POST", headers, body });
      answeredStatus = answer.status;
      await answer.arrayBuffer();
    } catch {
      answeredStatus = 0;
    }
    webhookDeliveries.push({ requestId: request.id, answeredStatus, headers, body });
  }

  function scriptedFault(response: ServerResponse): boolean {
    const scripted = httpFaults.take();
    if (!scripted) return false;
    switch (scripted.fault) {
      case "unauthorized":
        sendJson(response, 401, { detail: "Invalid authentication credentials" });
        return true;
      case "insufficient_credits":
        sendJson(response, 403, {
          detail:
            "User is locked. Reason: Exhausted balance. Top up your balance at fal.ai/dashboard/billing.",
        });
        return true;
      case "rate_limited":
        sendJson(
          response,
          429,
          { detail: "Too many requests: concurrent request limit reached" },
          { "retry-after": String(scripted.retryAfterSeconds) },
        );
        return true;
      case "server_error":
        sendJson(response, 500, { detail: "Internal server error" });
        return true;
      case "unavailable":
        sendJson(
          response,
          503,
          { detail: "No runner could be allocated", error_type: "runner_scheduling_failure" },
          { "x-fal-error-type": "runner_scheduling_failure" },
        );
        return true;
      case "html_error":
        response.writeHead(502, { "content-type": "text/html" });
        response.end(HTML_ERROR_PAGE);
        return true;
      case "portal_page":
        response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
        response.end(HTML_ERROR_PAGE);
        return true;
      case "hang":
        return true;
    }
  }

  async function submit(
    endpoint: string,
    query: URLSearchParams,
    request: IncomingMessage,
    response: ServerResponse,
  ): Promise<void> {
    calls.submit++;
    const raw = await readBody(request);
    if (scriptedFault(response)) return;
    if (!endpoints[endpoint]) {
      sendJson(response, 404, { detail: `Application '${endpoint}' not found` });
      return;
    }
    let input: unknown;
    try {
      input = JSON.parse(raw.toString("utf8"));
    } catch {
      sendJson(response, 400, { detail: "Request body is not valid JSON" });
      return;
    }
    if (typeof input !== "object" || input === null || Array.isArray(input)) {
      sendJson(response, 422, {
        detail: [{ loc: ["body"], msg: "Input should be a valid dictionary", type: "dict_type" }],
      });
      return;
    }
    const queued: FakeFalRequest = {
      id: randomUUID(),
      endpoint,
      input: input as Record<string, unknown>,
      status: "IN_QUEUE",
      polls: 0,
      webhook: query.get("fal_webhook") ?? undefined,
      fault: jobFaults.shift(),
      nsfw: nsfwNext,
      queuedAtMs: Date.now(),
      result: undefined,
    };
    nsfwNext = false;
    requests.set(queued.id, queued);
    sendJson(
      response,
      200,
      { status: "IN_QUEUE", request_id: queued.id, ...urlsOf(queued), queue_position: 0 },
      { "x-fal-request-id": queued.id },
    );
    if (queued.webhook) {
      setImmediate(() => {
        void (async () => {
          if (fake.processingMs > 0) await delay(fake.processingMs);
          if (queued.status !== "COMPLETED") await complete(queued);
          await deliver(queued);
        })();
      });
    }
  }

  async function status(app: string, id: string, response: ServerResponse): Promise<void> {
    calls.status++;
    if (scriptedFault(response)) return;
    const request = requests.get(id);
    if (!request || appOf(request.endpoint) !== app) {
      sendJson(response, 404, { detail: "Request not found" });
      return;
    }
    if (request.status !== "COMPLETED") {
      request.polls++;
      const ranMs = Date.now() - request.queuedAtMs;
      if (
        fake.processingMs > 0 ? ranMs >= fake.processingMs : request.polls >= fake.pollsToComplete
      )
        await complete(request);
      else request.status = request.polls === 1 ? "IN_PROGRESS" : request.status;
    }
    sendJson(response, 200, {
      status: request.status,
      ...urlsOf(request),
      ...(request.status === "IN_QUEUE" ? { queue_position: 0 } : {}),
      ...(request.status === "IN_PROGRESS" ? { logs: null } : {}),
    });
  }

  async function result(app: string, id: string, response: ServerResponse): Promise<void> {
    calls.result++;
    if (scriptedFault(response)) return;
    const request = requests.get(id);
    if (!request || appOf(request.endpoint) !== app) {
      sendJson(response, 404, { detail: "Request not found" });
      return;
    }
    if (request.status !== "COMPLETED" || !request.result) {
      sendJson(response, 400, { detail: "Request is still in progress" });
      return;
    }
    sendJson(response, request.result.status, request.result.body, {
      "x-fal-request-id": id,
      ...request.result.headers,
      ...(request.result.status === 422 ? { "x-fal-retryable": "false" } : {}),
    });
  }

  const server = createServer((request, response) => {
    const parsed = new URL(request.url ?? "/", "http://fake");
    const path = parsed.pathname;
    log.push({ method: request.method ?? "GET", path });
    if (path.startsWith("/files/")) {
      calls.file++;
      const file = files.get(path);
      if (!file) {
        response.writeHead(404, { "content-type": "text/plain" }).end("Not Found");
        return;
      }
      response.writeHead(200, { "content-type": file.contentType }).end(file.bytes);
      return;
    }
    if (path === "/.well-known/jwks.json") {
      calls.jwks++;
      sendJson(response, 200, { keys: [{ ...jwk, kid: "fake-fal-1", use: "sig", alg: "EdDSA" }] });
      return;
    }
    if (request.headers.authorization !== `Key ${key}`) {
      sendJson(response, 401, { detail: "Invalid authentication credentials" });
      return;
    }
    const handle = async () => {
      const statusMatch = /^\/([^/]+\/[^/]+)\/requests\/([^/]+)\/status$/.exec(path);
      if (request.method === "GET" && statusMatch?.[1] && statusMatch[2]) {
        return status(statusMatch[1], statusMatch[2], response);
      }
      const resultMatch = /^\/([^/]+\/[^/]+)\/requests\/([^/]+)$/.exec(path);
      if (request.method === "GET" && resultMatch?.[1] && resultMatch[2]) {
        return result(resultMatch[1], resultMatch[2], response);
      }
      if (request.method === "POST" && !path.includes("/requests/")) {
        return submit(path.slice(1), parsed.searchParams, request, response);
      }
      sendJson(response, 404, { detail: "Not Found" });
    };
    handle().catch((error: unknown) => {
      if (!response.headersSent) sendJson(response, 500, { detail: String(error) });
    });
  });
  const destroySockets = trackSockets(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const fake: FakeFal = {
    url,
    key,
    userId,
    jwksUrl: `${url}/.well-known/jwks.json`,
    requests,
    log,
    calls,
    webhookDeliveries,
    pollsToComplete: 2,
    processingMs: 0,
    failRequests(fault, count = 1, retryAfterSeconds = 1) {
      httpFaults.add(fault, count, retryAfterSeconds);
    },
    failNextRequest(fault) {
      jobFaults.push(fault);
    },
    flagNextAsNsfw() {
      nsfwNext = true;
    },
    async close() {
      destroySockets();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return fake;
}
