import type { FastifyError, FastifyReply, FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { ShotlistError } from "../domain/errors.js";

export const PROBLEM_TYPE_BASE = "https://shotlist.dev/problems/";

/** RFC 9457 problem details, with Shotlist's stable `code`. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance?: string;
  [extension: string]: unknown;
}

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

export function problemOf(error: ShotlistError, instance?: string): Problem {
  return {
    type: `${PROBLEM_TYPE_BASE}${error.code}`,
    title: TITLES[error.status] ?? "Error",
    status: error.status,
    detail: error.message,
    code: error.code,
    ...(instance ? { instance } : {}),
    ...error.extra,
  };
}

export function sendProblem(reply: FastifyReply, error: ShotlistError, instance?: string) {
  return reply
    .code(error.status)
    .type("application/problem+json")
    .send(JSON.stringify(problemOf(error, instance)));
}

/**
 * The one place errors become HTTP answers (Medusa's single error handler): ShotlistErrors keep
 * their code and detail; Fastify's own (bad JSON, body too large, bad content type) get ours;
 * anything else is a generic 500 with a log line, never a leaked stack.
 */
export function errorHandler(log: Logger) {
  return (error: FastifyError | Error, request: FastifyRequest, reply: FastifyReply) => {
    const instance = request.url;
    if (error instanceof ShotlistError) {
      if (error.status >= 500) log.error({ err: error, reqId: request.id }, error.message);
      return sendProblem(reply, error, instance);
    }
    const fastifyCode = (error as FastifyError).code;
    const statusCode = (error as FastifyError).statusCode;
    if (fastifyCode === "FST_ERR_CTP_BODY_TOO_LARGE") {
      return sendProblem(
        reply,
        new ShotlistError("payload_too_large", "request body is too large", { status: 413 }),
        instance,
      );
    }
    if (fastifyCode === "FST_ERR_CTP_INVALID_MEDIA_TYPE") {
      return sendProblem(
        reply,
        new ShotlistError("invalid_request", "send the body as application/json", { status: 415 }),
        instance,
      );
    }
    if (
      fastifyCode === "FST_ERR_CTP_EMPTY_JSON_BODY" ||
      fastifyCode === "FST_ERR_CTP_INVALID_JSON_BODY" ||
      (error instanceof SyntaxError && statusCode === 400)
    ) {
      return sendProblem(
        reply,
        new ShotlistError("invalid_json", `body is not valid JSON: ${error.message}`),
        instance,
      );
    }
    if (statusCode && statusCode >= 400 && statusCode < 500) {
      return sendProblem(
        reply,
        new ShotlistError("invalid_request", error.message, { status: statusCode }),
        instance,
      );
    }
    log.error({ err: error, reqId: request.id }, "unhandled error");
    return sendProblem(
      reply,
      new ShotlistError("internal", "internal error; see the server log", { status: 500 }),
      instance,
    );
  };
}
