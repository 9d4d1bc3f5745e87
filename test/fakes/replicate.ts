import { randomBytes, randomUUID } from "node:crypto";
import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { setTimeout as delay } from "node:timers/promises";
import { signReplicateWebhook } from "../../src/providers/replicate/webhook.js";
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
 * A fake Replicate HTTP API (https://replicate.com/docs/reference/http) on loopback, speaking
 * what the adapter uses: `POST /v1/predictions` (`version` + `input`, 422 problem details when
 * either is wrong), `GET /v1/predictions/{id}` moving starting → processing → succeeded over
 * polls, output files served like replicate.delivery, `GET /v1/webhooks/default/secret`, and
 * webhooks signed per Standard Webhooks (webhook-id / webhook-timestamp / webhook-signature)
 * sent to a prediction's `webhook` once it completes, honouring `webhook_events_filter`.
 * Auth is `Authorization: Bearer <token>`; errors are Replicate's problem JSON
 * (`{title, detail, status}`); 429 carries `retry-after`. Images are real, made with sharp.
 */
export interface FakePrediction {
  id: string;
  version: string;
  input: Record<string, unknown>;
  status: "starting" | "processing" | "succeeded" | "failed" | "canceled";
  polls: number;
  webhook: string | undefined;
  webhookEvents: string[];
  fault: JobFault | undefined;
  error: string | null;
  output: string[] | null;
  createdAt: string;
  completedAt: string | null;
}

export interface WebhookDelivery {
  predictionId: string;
  status: string;
  /** Status the receiver answered, or 0 when it could not be reached. */
  answeredStatus: number;
  headers: Record<string, string>;
  body: string;
}

export interface FakeReplicate {
  url: string;
  /** API base URL for the adapter: `${url}/v1`. */
  baseUrl: string;
  token: string;
  webhookSecret: string;
  predictions: Map<string, FakePrediction>;
  /** Every request received, in order (files and the secret included). */
  log: { method: string; path: string }[];
  /** Requests by route: "create", "get", "file", "secret". */
  calls: Record<"create" | "get" | "file" | "secret", number>;
  webhookDeliveries: WebhookDelivery[];
  /** The next `count` API requests (create or get) answer with `fault`. */
  failRequests(fault: HttpFault, count?: number, retryAfterSeconds?: number): void;
  /** The next prediction created ends with `fault`. */
  failNextPrediction(fault: JobFault): void;
  /** Polls (GETs) a prediction needs before it succeeds; default 2. */
  pollsToComplete: number;
  /**
   * Time a prediction takes to run, ms; default 0. When > 0 a prediction succeeds once this has
   * passed since it was created (polled or not, `pollsToComplete` ignored), and its webhook is
   * sent then: a model with a fixed run time.
   */
  processingMs: number;
  /** Predictions created and not yet finished (the provider's in-flight count). */
  inFlight(): number;
  close(): Promise<void>;
}

const PROBLEM = "application/problem+json";
const FORMATS: Record<string, ImageFormat> = { webp: "webp", jpg: "jpeg", png: "png" };

function predictionId(): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz0123456789";
  return Array.from(randomBytes(26), (byte) => alphabet[byte % alphabet.length]).join("");
}

function problem(response: ServerResponse, status: number, title: string, detail: string): void {
  sendJson(response, status, { title, detail, status }, {}, PROBLEM);
}

export async function startFakeReplicate(
  options: { token?: string; versions?: readonly string[] } = {},
): Promise<FakeReplicate> {
  const token = options.token ?? `r8_${randomUUID().replaceAll("-", "")}`;
  const webhookSecret = `whsec_${randomBytes(24).toString("base64")}`;
  const versions = options.versions ? new Set(options.versions) : undefined;
  const predictions = new Map<string, FakePrediction>();
  const files = new Map<string, { bytes: Buffer; contentType: string }>();
  const calls = { create: 0, get: 0, file: 0, secret: 0 };
  const log: { method: string; path: string }[] = [];
  const webhookDeliveries: WebhookDelivery[] = [];
  const httpFaults = new FaultScript<HttpFault>();
  const jobFaults: JobFault[] = [];
  let url = "";

  const view = (prediction: FakePrediction) => ({
    id: prediction.id,
    model: "shotlist-test/fake-model",
    version: prediction.version,
    input: prediction.input,
    logs: "",
    output: prediction.output,
    data_removed: false,
    error: prediction.error,
    status: prediction.status,
    source: "api",
    created_at: prediction.createdAt,
    started_at: prediction.status === "starting" ? null : prediction.createdAt,
    completed_at: prediction.completedAt,
    urls: {
      get: `${url}/v1/predictions/${prediction.id}`,
      cancel: `${url}/v1/predictions/${prediction.id}/cancel`,
      web: `https://replicate.com/p/${prediction.id}`,
    },
    metrics: prediction.completedAt ? { predict_time: 0.01 } : {},
    ...(prediction.webhook
      ? { webhook: prediction.webhook, webhook_events_filter: prediction.webhookEvents }
      : {}),
  });

  async function complete(prediction: FakePrediction): Promise<void> {
    const input = prediction.input;
    const width = Number(input.width ?? 1024);
    const height = Number(input.height ?? 1024);
    const format = FORMATS[String(input.output_format ?? "webp")] ?? "webp";
    const seed = Number(input.seed ?? 0);
    prediction.completedAt = new Date().toISOString();
    if (prediction.fault === "prediction_failed") {
      prediction.status = "failed";
      prediction.error = "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB";
      return;
    }
    if (prediction.fault === "content_policy") {
      prediction.status = "failed";
      prediction.error = "NSFW content detected. Try running it again, or try a different prompt.";
      return;
    }
    const file = prediction.fault
      ? await faultyImage(prediction.fault, width, height, format, seed)
      : { bytes: await drawImage(width, height, format, seed), contentType: `image/${format}` };
    const ext = String(input.output_format ?? "webp");
    const path = `/delivery/${prediction.id}/out-0.${ext}`;
    files.set(path, file);
    prediction.output = [`${url}${path}`];
    prediction.status = "succeeded";
  }

  async function deliver(prediction: FakePrediction, event: string): Promise<void> {
    if (!prediction.webhook || !prediction.webhookEvents.includes(event)) return;
    const body = JSON.stringify(view(prediction));
    const id = `msg_${randomUUID().replaceAll("-", "")}`;
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = {
      "content-type": "application/json",
      "webhook-id": id,
      "webhook-timestamp": String(timestamp),
      "webhook-signature": signReplicateWebhook(webhookSecret, id, timestamp, body),
    };
    let answeredStatus = 0;
    try {
      const answer = await fetch(prediction.webhook, { method: "POST", headers, body });
      answeredStatus = answer.status;
      await answer.arrayBuffer();
    } catch {
      answeredStatus = 0;
    }
    webhookDeliveries.push({
      predictionId: prediction.id,
      status: prediction.status,
      answeredStatus,
      headers,
      body,
    });
  }

  function scriptedFault(response: ServerResponse): boolean {
    const scripted = httpFaults.take();
    if (!scripted) return false;
    switch (scripted.fault) {
      case "unauthorized":
        problem(response, 401, "Unauthenticated", "You did not pass a valid authentication token");
        return true;
      case "insufficient_credits":
        problem(
          response,
          402,
          "Insufficient credit",
          "You have insufficient credit to run this model. Go to https://replicate.com/account/billing#billing to purchase credit.",
        );
        return true;
      case "rate_limited":
        sendJson(
          response,
          429,
          {
            title: "Request was throttled.",
            detail: `Request was throttled. Expected available in ${scripted.retryAfterSeconds} second.`,
            status: 429,
          },
          { "retry-after": String(scripted.retryAfterSeconds) },
          PROBLEM,
        );
        return true;
      case "server_error":
        problem(response, 500, "Internal Server Error", "Something went wrong on our end.");
        return true;
      case "unavailable":
        problem(response, 503, "Service Unavailable", "Replicate is temporarily unavailable.");
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
        return true; // never answers; close() ends the socket
    }
  }

  async function create(request: IncomingMessage, response: ServerResponse): Promise<void> {
    calls.create++;
    const raw = await readBody(request);
    if (scriptedFault(response)) return;
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw.toString("utf8")) as Record<string, unknown>;
    } catch {
      problem(response, 400, "Invalid JSON", "The request body is not valid JSON.");
      return;
    }
    if (request.headers.prefer !== undefined) {
      // The adapter must not block on `Prefer: wait`; a fake that saw it fails the test loudly.
      problem(response, 400, "Unexpected Prefer", "This fake expects asynchronous predictions.");
      return;
    }
    const version = body.version;
    if (typeof version !== "string" || !/^[0-9a-f]{64}$/.test(version)) {
      problem(
        response,
        422,
        "Invalid version or not permitted",
        "The specified version does not exist (or perhaps you don't have permission to use it?)",
      );
      return;
    }
    if (versions && !versions.has(version)) {
      problem(
        response,
        422,
        "Invalid version or not permitted",
        "The specified version does not exist (or perhaps you don't have permission to use it?)",
      );
      return;
    }
    const input = body.input;
    if (typeof input !== "object" || input === null || Array.isArray(input)) {
      sendJson(
        response,
        422,
        {
          title: "Input validation failed",
          detail: "- input: Invalid type. Expected: object, given: null",
          status: 422,
          invalid_fields: [{ type: "required", field: "input", description: "input is required" }],
        },
        {},
        PROBLEM,
      );
      return;
    }
    const invalid = Object.entries(input as Record<string, unknown>).filter(
      ([key, value]) =>
        ((key === "width" || key === "height") &&
          (!Number.isInteger(value) || (value as number) < 1)) ||
        (typeof value === "string" &&
          value.startsWith("data:") &&
          !/^data:[\w/+.-]+;base64,[A-Za-z0-9+/]+=*$/.test(value)),
    );
    if (invalid.length > 0) {
      sendJson(
        response,
        422,
        {
          title: "Input validation failed",
          detail: invalid.map(([key]) => `- ${key}: invalid value`).join("\n"),
          status: 422,
          invalid_fields: invalid.map(([key]) => ({ type: "invalid", field: key })),
        },
        {},
        PROBLEM,
      );
      return;
    }
    const webhook = typeof body.webhook === "string" ? body.webhook : undefined;
    const filter = Array.isArray(body.webhook_events_filter)
      ? body.webhook_events_filter.map(String)
      : ["start", "output", "logs", "completed"];
    const prediction: FakePrediction = {
      id: predictionId(),
      version,
      input: input as Record<string, unknown>,
      status: "starting",
      polls: 0,
      webhook,
      webhookEvents: filter,
      fault: jobFaults.shift(),
      error: null,
      output: null,
      createdAt: new Date().toISOString(),
      completedAt: null,
    };
    predictions.set(prediction.id, prediction);
    sendJson(response, 201, view(prediction));
    if (webhook) {
      // With a webhook, the prediction runs on its own and calls back (nobody need poll).
      setImmediate(() => {
        void (async () => {
          await deliver(prediction, "start");
          prediction.status = "processing";
          if (fake.processingMs > 0) await delay(fake.processingMs);
          // A poll may have finished it meanwhile (processingMs passed): only the webhook is left.
          if (prediction.status === "processing") await complete(prediction);
          await deliver(prediction, "completed");
        })();
      });
    }
  }

  async function get(id: string, response: ServerResponse): Promise<void> {
    calls.get++;
    if (scriptedFault(response)) return;
    const prediction = predictions.get(id);
    if (!prediction) {
      problem(response, 404, "Not found", "The requested resource could not be found.");
      return;
    }
    if (prediction.status === "starting" || prediction.status === "processing") {
      prediction.polls++;
      const ranMs = Date.now() - Date.parse(prediction.createdAt);
      if (
        fake.processingMs > 0
          ? ranMs >= fake.processingMs
          : prediction.polls >= fake.pollsToComplete
      )
        await complete(prediction);
      else prediction.status = "processing";
    }
    sendJson(response, 200, view(prediction));
  }

  const server = createServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://fake").pathname;
    log.push({ method: request.method ?? "GET", path });
    if (path.startsWith("/delivery/")) {
      calls.file++;
      const file = files.get(path);
      if (!file) {
        response.writeHead(404, { "content-type": "text/plain" });
        response.end("Not Found");
        return;
      }
      response.writeHead(200, { "content-type": file.contentType });
      response.end(file.bytes);
      return;
    }
    // Replicate documents `Bearer`; the older `Token` scheme is still accepted.
    const authorization = request.headers.authorization;
    if (authorization !== `Bearer ${token}` && authorization !== `Token ${token}`) {
      problem(response, 401, "Unauthenticated", "You did not pass a valid authentication token");
      return;
    }
    const handle = async () => {
      if (request.method === "POST" && path === "/v1/predictions") return create(request, response);
      const match = /^\/v1\/predictions\/([^/]+)$/.exec(path);
      if (request.method === "GET" && match?.[1])
        return get(decodeURIComponent(match[1]), response);
      if (request.method === "GET" && path === "/v1/webhooks/default/secret") {
        calls.secret++;
        if (scriptedFault(response)) return;
        sendJson(response, 200, { key: webhookSecret });
        return;
      }
      problem(response, 404, "Not found", "The requested resource could not be found.");
    };
    handle().catch((error: unknown) => {
      if (!response.headersSent) problem(response, 500, "Internal Server Error", String(error));
    });
  });
  const destroySockets = trackSockets(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const fake: FakeReplicate = {
    url,
    baseUrl: `${url}/v1`,
    token,
    webhookSecret,
    predictions,
    log,
    calls,
    webhookDeliveries,
    pollsToComplete: 2,
    processingMs: 0,
    inFlight: () =>
      [...predictions.values()].filter(
        (prediction) => prediction.status === "starting" || prediction.status === "processing",
      ).length,
    failRequests(fault, count = 1, retryAfterSeconds = 1) {
      httpFaults.add(fault, count, retryAfterSeconds);
    },
    failNextPrediction(fault) {
      jobFaults.push(fault);
    },
    async close() {
      destroySockets();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return fake;
}
