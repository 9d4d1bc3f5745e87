import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import sharp, { type Sharp } from "sharp";

/**
 * A fake paid image provider (local HTTP, port 0) speaking Shotlist's generic `http` protocol
 * (docs/providers.md): sync `POST /v1/images`, async `POST /v1/jobs` + `GET /v1/jobs/{id}` +
 * `GET /v1/jobs/{id}/output`, optional webhook on completion. It makes real images with sharp
 * (a product-like subject on white, about 86% of the frame high, that passes the hero checks;
 * the seed picks its colour and shape) and counts every billable call.
 *
 * Billing, as a real provider bills: a generation is billed once it starts — a sync request that
 * passes auth and validation and is not answered with a fault status (429/500/503), or an async
 * job accepted. A timed-out or hung request is billed (the generation started). A retry with an
 * Idempotency-Key already billed replays the first answer and is not billed again.
 *
 * Faults (in-process `setFaults`/`script`, or `POST /_fake/faults` with the same JSON):
 * `401`, `500`, `503`, `429` (with Retry-After), `timeout` (holds the request `timeoutMs` then drops
 * the connection), `hang` (never answers), `corrupt` (truncated image bytes), `blank` (an all
 * white image), `slow` (succeeds after `slowMs`), `ok`. A script is consumed first, one fault
 * per generation request; then `rates` draw with a seeded generator (reproducible runs).
 */
export type FakeFault =
  | "ok"
  | "401"
  | "500"
  | "503"
  | "429"
  | "timeout"
  | "hang"
  | "corrupt"
  | "blank"
  | "slow";

export interface FakeFaultPlan {
  /** Probability of each fault per generation request (the rest succeed); sum ≤ 1. */
  rates?: Partial<Record<Exclude<FakeFault, "ok">, number>>;
  /** Faults for the next generation requests, in order, before rates apply. */
  script?: FakeFault[];
  /** Retry-After of a 429 (and of a 503), in seconds; default 1. */
  retryAfterSeconds?: number;
  /** Delay of `slow`, in ms; default 1,500. */
  slowMs?: number;
  /** How long `timeout` holds the request before dropping it, in ms; default 10,000. */
  timeoutMs?: number;
  /** Seed of the rate draws; default 1. */
  seed?: number;
}

export interface FakeRequestRecord {
  method: string;
  path: string;
  idempotencyKey: string | null;
  /** The fault served, for generation requests. */
  fault: FakeFault | null;
  billed: boolean;
  at: number;
}

export interface FakeJob {
  id: string;
  idempotencyKey: string;
  status: "queued" | "running" | "succeeded" | "failed";
  fault: FakeFault;
  body: GenerationBody;
  createdAt: number;
  completesAt: number;
  polls: number;
}

interface GenerationBody {
  model: string;
  prompt: string | null;
  seed: number;
  width: number;
  height: number;
  format: "jpeg" | "png" | "webp";
  images: string[];
  webhook?: string;
}

export interface FakePaidProvider {
  /** Base URL, e.g. http://127.0.0.1:40123 */
  url: string;
  apiKey: string;
  /** Generations billed so far. */
  readonly billable: number;
  /** The Idempotency-Key of every billed generation, in order (each appears once). */
  billedKeys(): string[];
  /** Every request received, in order. */
  requests: FakeRequestRecord[];
  /** Async jobs by id. */
  jobs: Map<string, FakeJob>;
  /** Webhook deliveries the fake made (url, status answered or error). */
  webhooksSent: { url: string; jobId: string; status: number | string }[];
  /** Replaces the fault plan (rates, script, delays). */
  setFaults(plan: FakeFaultPlan): void;
  /** Appends faults to the script. */
  script(...faults: FakeFault[]): void;
  close(): Promise<void>;
}

export interface FakePaidProviderOptions {
  apiKey?: string;
  /** How long an async job takes from acceptance to `succeeded`, in ms; default 30. */
  asyncDurationMs?: number;
  faults?: FakeFaultPlan;
}

const FORMATS = new Set(["jpeg", "png", "webp"]);

/** mulberry32: a small seeded generator, so a fault mix is the same on every run. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A product-like subject on white: a bottle body and cap, coloured and shaped by the seed. */
export async function renderProductImage(
  body: Pick<GenerationBody, "seed" | "width" | "height" | "format">,
): Promise<Buffer> {
  const { width, height, seed } = body;
  const hue = seed % 360;
  const subjectHeight = Math.round(height * 0.86);
  const top = Math.round((height - subjectHeight) / 2);
  const bodyWidth = Math.round(width * (0.3 + ((seed >>> 9) % 20) / 100));
  const left = Math.round((width - bodyWidth) / 2);
  const capHeight = Math.round(subjectHeight * 0.16);
  const capWidth = Math.round(bodyWidth * 0.45);
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">
    <defs><linearGradient id="g" x1="0" x2="1" y1="0" y2="0">
      <stop offset="0" stop-color="hsl(${hue},55%,28%)"/>
      <stop offset="0.45" stop-color="hsl(${hue},60%,52%)"/>
      <stop offset="1" stop-color="hsl(${hue},55%,22%)"/>
    </linearGradient></defs>
    <rect x="${Math.round((width - capWidth) / 2)}" y="${top}" width="${capWidth}" height="${capHeight}" rx="${Math.round(capWidth / 10)}" fill="hsl(${(hue + 180) % 360},30%,25%)"/>
    <rect x="${left}" y="${top + capHeight}" width="${bodyWidth}" height="${subjectHeight - capHeight}" rx="${Math.round(bodyWidth / 6)}" fill="url(#g)"/>
    <rect x="${left + Math.round(bodyWidth * 0.15)}" y="${top + Math.round(subjectHeight * 0.45)}" width="${Math.round(bodyWidth * 0.7)}" height="${Math.round(subjectHeight * 0.2)}" fill="#f4f1ea"/>
  </svg>`;
  return encode(sharp(Buffer.from(svg)).flatten({ background: "#ffffff" }), body.format);
}

async function renderBlankImage(
  body: Pick<GenerationBody, "width" | "height" | "format">,
): Promise<Buffer> {
  const blank = sharp({
    create: { width: body.width, height: body.height, channels: 3, background: "#ffffff" },
  });
  return encode(blank, body.format);
}

function encode(image: Sharp, format: GenerationBody["format"]): Promise<Buffer> {
  if (format === "png") return image.png().toBuffer();
  if (format === "webp") return image.webp({ quality: 85 }).toBuffer();
  return image.jpeg({ quality: 88 }).toBuffer();
}

const CONTENT_TYPE: Readonly<Record<GenerationBody["format"], string>> = {
  jpeg: "image/jpeg",
  png: "image/png",
  webp: "image/webp",
};

function parseBody(raw: string): GenerationBody | string {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return "the body is not JSON";
  }
  const body = value as Partial<GenerationBody>;
  if (typeof body.model !== "string" || body.model.length === 0) return "model is required";
  if (typeof body.seed !== "number" || !Number.isInteger(body.seed))
    return "seed must be an integer";
  for (const side of ["width", "height"] as const) {
    const n = body[side];
    if (typeof n !== "number" || !Number.isInteger(n) || n < 16 || n > 4096) {
      return `${side} must be an integer from 16 to 4096`;
    }
  }
  if (typeof body.format !== "string" || !FORMATS.has(body.format)) {
    return "format must be jpeg, png or webp";
  }
  if (!Array.isArray(body.images) || body.images.some((image) => typeof image !== "string")) {
    return "images must be an array of base64 strings";
  }
  if (body.webhook !== undefined && typeof body.webhook !== "string")
    return "webhook must be a URL";
  return body as GenerationBody;
}

export async function startFakePaidProvider(
  options: FakePaidProviderOptions = {},
): Promise<FakePaidProvider> {
  const apiKey = options.apiKey ?? `sk_fake_${randomUUID().replaceAll("-", "")}`;
  const asyncDurationMs = options.asyncDurationMs ?? 30;
  let plan: FakeFaultPlan = options.faults ?? {};
  let scripted: FakeFault[] = [...(plan.script ?? [])];
  let random = seededRandom(plan.seed ?? 1);
  const requests: FakeRequestRecord[] = [];
  const jobs = new Map<string, FakeJob>();
  const jobsByKey = new Map<string, FakeJob>();
  const billed: string[] = [];
  /** Sync answers already billed, by Idempotency-Key, replayed to a retry with that key. */
  const syncAnswers = new Map<string, Promise<{ status: number; type: string; bytes: Buffer }>>();
  const webhooksSent: FakePaidProvider["webhooksSent"] = [];
  const timers = new Set<NodeJS.Timeout>();

  const later = (ms: number, work: () => void) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      work();
    }, ms);
    timers.add(timer);
  };

  const setFaults = (next: FakeFaultPlan) => {
    plan = next;
    scripted = [...(next.script ?? [])];
    random = seededRandom(next.seed ?? 1);
  };

  const drawFault = (): FakeFault => {
    const next = scripted.shift();
    if (next) return next;
    const draw = random();
    let sum = 0;
    for (const [fault, rate] of Object.entries(plan.rates ?? {})) {
      sum += rate ?? 0;
      if (draw < sum) return fault as FakeFault;
    }
    return "ok";
  };

  const sendJson = (
    response: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ) => {
    response.writeHead(status, { "content-type": "application/json", ...headers });
    response.end(JSON.stringify(body));
  };
  const sendError = (
    response: ServerResponse,
    status: number,
    code: string,
    message: string,
    headers: Record<string, string> = {},
  ) => sendJson(response, status, { error: { code, message } }, headers);

  /** 401/429/500/503 faults are answered before any work: not billed. */
  const answerStatusFault = (response: ServerResponse, fault: FakeFault): boolean => {
    const retryAfter = String(plan.retryAfterSeconds ?? 1);
    if (fault === "429") {
      sendError(response, 429, "rate_limited", "too many requests", { "retry-after": retryAfter });
      return true;
    }
    if (fault === "503") {
      sendError(response, 503, "unavailable", "overloaded", { "retry-after": retryAfter });
      return true;
    }
    if (fault === "401") {
      // As when a key is revoked mid-run: refused before any work.
      sendError(response, 401, "unauthorized", "the API key was revoked");
      return true;
    }
    if (fault === "500") {
      sendError(response, 500, "internal", "the generator crashed");
      return true;
    }
    return false;
  };

  /** timeout: hold, then drop the connection; hang: hold until the client leaves or close(). */
  const holdRequest = (request: IncomingMessage, fault: FakeFault): boolean => {
    if (fault === "hang") return true;
    if (fault === "timeout") {
      later(plan.timeoutMs ?? 10_000, () => request.socket.destroy());
      return true;
    }
    return false;
  };

  const imageFor = async (body: GenerationBody, fault: FakeFault): Promise<Buffer> => {
    if (fault === "blank") return renderBlankImage(body);
    const bytes = await renderProductImage(body);
    // Truncated mid-stream, as when a CDN drops the connection: the header still parses.
    return fault === "corrupt" ? bytes.subarray(0, Math.floor(bytes.length / 2)) : bytes;
  };

  const bill = (key: string, record: FakeRequestRecord) => {
    billed.push(key);
    record.billed = true;
  };

  const jobJson = (job: FakeJob) => {
    const now = Date.now();
    if (job.status !== "failed") {
      job.status = now >= job.completesAt ? "succeeded" : job.polls === 0 ? "queued" : "running";
    }
    return { id: job.id, status: job.status };
  };

  async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? "/", "http://fake");
    const idempotencyKey = request.headers["idempotency-key"];
    const record: FakeRequestRecord = {
      method: request.method ?? "GET",
      path: url.pathname,
      idempotencyKey: typeof idempotencyKey === "string" ? idempotencyKey : null,
      fault: null,
      billed: false,
      at: Date.now(),
    };
    requests.push(record);
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString("utf8");

    if (url.pathname === "/_fake/faults" && request.method === "POST") {
      setFaults(JSON.parse(raw) as FakeFaultPlan);
      return sendJson(response, 200, { ok: true });
    }
    if (url.pathname === "/_fake/stats" && request.method === "GET") {
      return sendJson(response, 200, { billable: billed.length, billedKeys: billed });
    }
    if (request.headers.authorization !== `Bearer ${apiKey}`) {
      return sendError(response, 401, "unauthorized", "missing or wrong API key");
    }

    const generation =
      request.method === "POST" && (url.pathname === "/v1/images" || url.pathname === "/v1/jobs");
    if (generation) {
      if (!record.idempotencyKey) {
        return sendError(response, 400, "invalid_request", "Idempotency-Key header is required");
      }
      const body = parseBody(raw);
      if (typeof body === "string") return sendError(response, 400, "invalid_request", body);
      const key = record.idempotencyKey;

      if (url.pathname === "/v1/images") {
        const replay = syncAnswers.get(key);
        if (replay) {
          const answer = await replay;
          response.writeHead(answer.status, { "content-type": answer.type });
          return void response.end(answer.bytes);
        }
        const fault = drawFault();
        record.fault = fault;
        if (answerStatusFault(response, fault)) return;
        bill(key, record);
        const answer = (async () => {
          if (fault === "slow")
            await new Promise((resolve) => later(plan.slowMs ?? 1_500, () => resolve(undefined)));
          const bytes = await imageFor(body, fault);
          return { status: 200, type: CONTENT_TYPE[body.format], bytes };
        })();
        syncAnswers.set(key, answer);
        if (holdRequest(request, fault)) return;
        const { status, type, bytes } = await answer;
        response.writeHead(status, { "content-type": type, "x-request-id": `req_${key}` });
        return void response.end(bytes);
      }

      // Async submit.
      const existing = jobsByKey.get(key);
      if (existing) return sendJson(response, 201, jobJson(existing));
      const fault = drawFault();
      record.fault = fault;
      if (answerStatusFault(response, fault)) return;
      bill(key, record);
      const createdAt = Date.now();
      const job: FakeJob = {
        id: `job_${randomUUID()}`,
        idempotencyKey: key,
        status: "queued",
        fault,
        body,
        createdAt,
        completesAt: createdAt + (fault === "slow" ? (plan.slowMs ?? 1_500) : asyncDurationMs),
        polls: 0,
      };
      jobs.set(job.id, job);
      jobsByKey.set(key, job);
      if (body.webhook) {
        const webhook = body.webhook;
        later(job.completesAt - createdAt, () => {
          fetch(webhook, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify(jobJson(job)),
          })
            .then((answer) =>
              webhooksSent.push({ url: webhook, jobId: job.id, status: answer.status }),
            )
            .catch((error: Error) =>
              webhooksSent.push({ url: webhook, jobId: job.id, status: error.message }),
            );
        });
      }
      // A submit that times out or hangs was accepted (and billed); the client never hears it.
      if (holdRequest(request, fault)) return;
      return sendJson(response, 201, jobJson(job));
    }

    const jobMatch = /^\/v1\/jobs\/([^/]+)(\/output)?$/.exec(url.pathname);
    if (request.method === "GET" && jobMatch) {
      const job = jobs.get(decodeURIComponent(jobMatch[1] ?? ""));
      if (!job) return sendError(response, 404, "not_found", "no such job");
      if (!jobMatch[2]) {
        const answer = jobJson(job);
        job.polls++;
        return sendJson(response, 200, answer);
      }
      if (jobJson(job).status !== "succeeded") {
        return sendError(response, 409, "not_ready", `job is ${job.status}`);
      }
      const bytes = await imageFor(job.body, job.fault);
      response.writeHead(200, {
        "content-type": CONTENT_TYPE[job.body.format],
        "x-request-id": job.id,
      });
      return void response.end(bytes);
    }
    return sendError(response, 404, "not_found", `no route ${request.method} ${url.pathname}`);
  }

  const server = createServer((request, response) => {
    handle(request, response).catch((error: Error) => {
      if (!response.headersSent) sendError(response, 500, "internal", error.message);
      else response.destroy(error);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    apiKey,
    get billable() {
      return billed.length;
    },
    billedKeys: () => [...billed],
    requests,
    jobs,
    webhooksSent,
    setFaults,
    script: (...faults) => {
      scripted.push(...faults);
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
