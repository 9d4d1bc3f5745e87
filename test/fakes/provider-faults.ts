import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import sharp from "sharp";

/**
 * Faults a provider fake can be scripted to show, shared by the async fakes (Replicate, fal).
 * HTTP faults answer the next API requests; job faults decide how the next prediction ends.
 */
export type HttpFault =
  | "unauthorized"
  | "insufficient_credits"
  | "rate_limited"
  | "server_error"
  | "unavailable"
  | "html_error"
  /** 200 with an HTML page where the API's JSON was due (a captive portal, a misrouted URL). */
  | "portal_page"
  | "hang";

export type JobFault =
  /** The model ran and failed (an error of its own, not a refusal). */
  | "prediction_failed"
  | "content_policy"
  | "non_image"
  | "truncated"
  | "wrong_size"
  | "wrong_format"
  | "html_page";

export type ImageFormat = "jpeg" | "png" | "webp";

/** A real image made with sharp: a colour from the seed, a darker square in the middle. */
export async function drawImage(
  width: number,
  height: number,
  format: ImageFormat,
  seed: number,
): Promise<Buffer> {
  const r = 64 + (seed % 160);
  const g = 64 + ((seed >> 3) % 160);
  const b = 64 + ((seed >> 6) % 160);
  const side = Math.max(1, Math.floor(Math.min(width, height) / 2));
  const square = await sharp({
    create: {
      width: side,
      height: side,
      channels: 3,
      background: { r: r / 2, g: g / 2, b: b / 2 },
    },
  })
    .png()
    .toBuffer();
  return sharp({ create: { width, height, channels: 3, background: { r, g, b } } })
    .composite([{ input: square, gravity: "centre" }])
    .toFormat(format)
    .toBuffer();
}

/** The bytes a job fault serves in place of the image, with their content type. */
export async function faultyImage(
  fault: Exclude<JobFault, "content_policy" | "prediction_failed">,
  width: number,
  height: number,
  format: ImageFormat,
  seed: number,
): Promise<{ bytes: Buffer; contentType: string }> {
  const contentType = `image/${format}`;
  switch (fault) {
    case "non_image":
      return { bytes: Buffer.from("this is not an image, only text\n"), contentType };
    case "truncated": {
      const whole = await drawImage(width, height, format, seed);
      return { bytes: whole.subarray(0, Math.floor(whole.length / 2)), contentType };
    }
    case "wrong_size":
      return {
        bytes: await drawImage(Math.max(1, width >> 1), Math.max(1, height >> 1), format, seed),
        contentType,
      };
    case "wrong_format": {
      const other: ImageFormat = format === "png" ? "jpeg" : "png";
      return { bytes: await drawImage(width, height, other, seed), contentType: `image/${other}` };
    }
    case "html_page":
      return {
        bytes: Buffer.from("<!DOCTYPE html><html><body><h1>Access denied</h1></body></html>"),
        contentType: "text/html; charset=utf-8",
      };
  }
}

/** A CDN's error page, as a 502 from a proxy in front of the API would look. */
export const HTML_ERROR_PAGE =
  "<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>\n";

export async function readBody(request: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export function sendJson(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
  contentType = "application/json",
): void {
  response.writeHead(status, { "content-type": contentType, ...headers });
  response.end(JSON.stringify(body));
}

/** Keeps the sockets of a server so `close()` can end hanging requests too. */
export function trackSockets(server: Server): () => void {
  const sockets = new Set<Socket>();
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  return () => {
    for (const socket of sockets) socket.destroy();
  };
}

/** A queue of scripted faults: each `take()` consumes one. */
export class FaultScript<F> {
  private readonly queue: { fault: F; retryAfterSeconds: number }[] = [];

  add(fault: F, count: number, retryAfterSeconds: number): void {
    for (let index = 0; index < count; index++) this.queue.push({ fault, retryAfterSeconds });
  }

  take(): { fault: F; retryAfterSeconds: number } | undefined {
    return this.queue.shift();
  }
}
