import { once } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import sharp from "sharp";

/**
 * The faults every provider fake can script, named for what happens, not for a status code:
 * each fake answers them in its own provider's documented way (OpenAI says "insufficient
 * credits" as 429 `insufficient_quota`, remove.bg as 402), and the contract suite checks that
 * the adapter maps each to the same `ProviderFailureKind`.
 */
export type FakeFault =
  /** Bad or missing credentials: the provider's 401. */
  | "unauthorized"
  /** Out of credits/quota: 402 or the provider's own equivalent. */
  | "insufficient_credits"
  /** Moderation refusal, in the provider's words and status. */
  | "content_policy"
  /** 429 with `Retry-After` (seconds from `FaultOptions.retryAfterSeconds`, default 2). */
  | "rate_limited"
  /** 500 with the provider's error body. */
  | "server_error"
  /** 503 (overloaded / maintenance). */
  | "unavailable"
  /** Accepts the request and never answers (until the client gives up or the fake closes). */
  | "hang"
  /**
   * 200 with an HTML page (a captive portal, a misrouted base URL answering a login page): the
   * status says success, the body is no image.
   */
  | "html_page"
  /** 200 with bytes that are not an image, under the image content type. */
  | "non_image"
  /** 200 with the first half of a real image. */
  | "truncated"
  /** 200 with a real, decodable image of a size the adapter did not ask for. */
  | "wrong_size"
  /** Async fakes only: the prediction is accepted, then ends failed (model error). */
  | "prediction_failed";

export interface FaultOptions {
  /** `Retry-After` in seconds for `rate_limited`; default 2. */
  retryAfterSeconds?: number;
}

/** One request the fake received, for assertions on the wire protocol. */
export interface FakeCall {
  method: string;
  path: string;
  /** The provider's idempotency header, when the provider has one and it was sent. */
  idempotencyKey?: string;
}

/** The control surface every provider fake exposes, so one suite scripts them all alike. */
export interface ProviderFake {
  /** Base URL to give the adapter (`baseUrl`). */
  url: string;
  /** The API key the fake accepts; anything else is the provider's 401. */
  apiKey: string;
  /** Every request received, in order (including ones answered with an error). */
  calls: FakeCall[];
  /** The next `count` billable requests (default 1) fail with `fault`. */
  failNext(fault: FakeFault, count?: number, options?: FaultOptions): void;
  /** Faults this fake can script (an async-only fault is absent from sync fakes). */
  readonly faults: ReadonlySet<FakeFault>;
  close(): Promise<void>;
}

/** A queue of scripted faults, taken one per billable request. */
export class FaultScript {
  #queue: { fault: FakeFault; options: FaultOptions }[] = [];

  push(fault: FakeFault, count = 1, options: FaultOptions = {}): void {
    for (let index = 0; index < count; index++) this.#queue.push({ fault, options });
  }

  take(): { fault: FakeFault; options: FaultOptions } | undefined {
    return this.#queue.shift();
  }
}

/** The HTML page a proxy or portal in front of an API answers instead of the API. */
export const HTML_ERROR_PAGE =
  "<!DOCTYPE html>\n<html><head><title>Sign in</title></head>" +
  '<body><h1>Sign in to continue</h1><form method="post"></form></body></html>\n';

/** A real image made with sharp: a soft object on a light backdrop, in the asked format. */
export async function drawFakeImage(
  width: number,
  height: number,
  format: "png" | "jpeg" | "webp" | "avif",
  options: { alpha?: boolean; backdrop?: string } = {},
): Promise<Buffer> {
  const radius = Math.max(1, Math.round(Math.min(width, height) * 0.3));
  const backdrop = options.alpha ? "fill-opacity='0'" : `fill='${options.backdrop ?? "#f4f4f4"}'`;
  const svg = Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
      `<rect width="100%" height="100%" ${backdrop}/>` +
      `<circle cx="${width / 2}" cy="${height / 2}" r="${radius}" fill="#b0413e"/></svg>`,
  );
  const image = sharp(svg);
  switch (format) {
    case "png":
      return image.png().toBuffer();
    case "jpeg":
      return image.flatten({ background: "#ffffff" }).jpeg({ quality: 85 }).toBuffer();
    case "webp":
      return image.webp({ quality: 80 }).toBuffer();
    case "avif":
      return image.avif({ quality: 50 }).toBuffer();
  }
}

/** The first half of `bytes`: a header that reads fine and a body that ends early. */
export function truncate(bytes: Buffer): Buffer {
  return bytes.subarray(0, Math.floor(bytes.length / 2));
}

/** Reads a whole request body. */
export async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * Parses a multipart/form-data body (RFC 7578) into fields and files, as the real APIs do before
 * validating them. Enough for what clients send (no nested multiparts).
 */
export function parseMultipart(
  body: Buffer,
  contentType: string,
): {
  fields: Map<string, string[]>;
  files: Map<string, { filename: string; type: string; bytes: Buffer }[]>;
} | null {
  const match = /boundary=(?:"([^"]+)"|([^;]+))/i.exec(contentType);
  const boundary = match?.[1] ?? match?.[2];
  if (!contentType.toLowerCase().startsWith("multipart/form-data") || !boundary) return null;
  const fields = new Map<string, string[]>();
  const files = new Map<string, { filename: string; type: string; bytes: Buffer }[]>();
  const delimiter = Buffer.from(`--${boundary}`);
  let position = body.indexOf(delimiter);
  if (position < 0) return null;
  while (true) {
    position += delimiter.length;
    if (body.subarray(position, position + 2).toString() === "--") break;
    position += 2; // CRLF after the delimiter
    const headerEnd = body.indexOf("\r\n\r\n", position);
    if (headerEnd < 0) return null;
    const headers = body.subarray(position, headerEnd).toString("utf8");
    const next = body.indexOf(delimiter, headerEnd + 4);
    if (next < 0) return null;
    const content = body.subarray(headerEnd + 4, next - 2); // CRLF before the delimiter
    const name = /name="([^"]*)"/i.exec(headers)?.[1];
    const filename = /filename="([^"]*)"/i.exec(headers)?.[1];
    const type = /content-type:\s*([^\r\n]+)/i.exec(headers)?.[1]?.trim() ?? "";
    if (name !== undefined) {
      if (filename !== undefined) {
        const list = files.get(name) ?? [];
        list.push({ filename, type, bytes: Buffer.from(content) });
        files.set(name, list);
      } else {
        const list = fields.get(name) ?? [];
        list.push(content.toString("utf8"));
        fields.set(name, list);
      }
    }
    position = next;
  }
  return { fields, files };
}

/**
 * A local HTTP server on a free loopback port. Requests that never get an answer (the `hang`
 * fault) are kept open until the client gives up or `close` destroys them.
 */
export async function listenFake(
  handler: (request: IncomingMessage, response: ServerResponse) => Promise<void>,
): Promise<{ url: string; close(): Promise<void> }> {
  const server: Server = createServer((request, response) => {
    handler(request, response).catch((error: unknown) => {
      if (!response.headersSent) {
        response.writeHead(500, { "content-type": "text/plain" });
        response.end(`fake failed: ${(error as Error).message}`);
      }
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Answers JSON with the given status and extra headers. */
export function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
    ...headers,
  });
  response.end(text);
}

/** Answers the HTML page a portal in front of the provider would send, with a 200. */
export function sendHtmlPage(response: ServerResponse): void {
  response.writeHead(200, { "content-type": "text/html; charset=utf-8" });
  response.end(HTML_ERROR_PAGE);
}

/**
 * Answers the faults that are about the image in a 200 (and `hang`), the same way for every
 * provider: an HTML page, bytes that are no image under the image type, half an image, an image
 * of another size, or no answer at all. Returns false for faults the provider answers itself.
 */
export async function answerImageFault(
  response: ServerResponse,
  fault: FakeFault,
  image: {
    width: number;
    height: number;
    format: "png" | "jpeg" | "webp";
    headers?: Record<string, string>;
  },
): Promise<boolean> {
  const contentType = `image/${image.format}`;
  switch (fault) {
    case "hang":
      // Never answered: the client's deadline or abort ends it, or close() destroys the socket.
      return true;
    case "html_page":
      sendHtmlPage(response);
      return true;
    case "non_image": {
      const bytes = Buffer.from("this is not an image, it only says it is\n");
      response.writeHead(200, { "content-type": contentType, ...image.headers });
      response.end(bytes);
      return true;
    }
    case "truncated": {
      const bytes = truncate(await drawFakeImage(image.width, image.height, image.format));
      response.writeHead(200, { "content-type": contentType, ...image.headers });
      response.end(bytes);
      return true;
    }
    case "wrong_size": {
      const width = Math.max(16, Math.round(image.width / 2));
      const height = Math.max(16, Math.round(image.height / 3));
      const bytes = await drawFakeImage(width, height, image.format);
      response.writeHead(200, { "content-type": contentType, ...image.headers });
      response.end(bytes);
      return true;
    }
    default:
      return false;
  }
}
