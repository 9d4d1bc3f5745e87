import type { FastifyInstance } from "fastify";
import { ShotlistError } from "../../domain/errors.js";
import { isWebhookEventType, WEBHOOK_EVENTS } from "../../domain/webhook-events.js";
import { attemptsOf, DEFAULT_RETRY_SCHEDULE } from "../../integrations/webhooks/schedule.js";
import type { Runtime } from "../../runtime.js";
import {
  DELIVERY_STATUSES,
  type DeliveryAttemptRow,
  type DeliveryRow,
  type DeliveryStatus,
  getDelivery,
  listDeliveries,
  listDeliveryAttempts,
  requeueDelivery,
} from "../../store/webhook-deliveries.js";

const deliveryView = (delivery: DeliveryRow, attempts: readonly DeliveryAttemptRow[]) => ({
  id: delivery.id,
  endpointId: delivery.endpointId,
  event: delivery.event,
  status: delivery.status,
  attempts: delivery.attempts,
  lastStatusCode: delivery.lastStatusCode,
  lastError: delivery.lastError,
  nextAttemptAt: delivery.status === "pending" ? delivery.nextAttemptAt : null,
  createdAt: delivery.createdAt,
  updatedAt: delivery.updatedAt,
  payload: delivery.payload,
  attemptLog: attempts
    .filter((attempt) => attempt.deliveryId === delivery.id)
    .map(({ deliveryId: _, ...attempt }) => attempt),
});

/** The outbound webhook delivery log (every attempt) and manual redelivery. */
export function webhookDeliveryRoutes(app: FastifyInstance, runtime: Runtime) {
  app.get<{
    Querystring: {
      endpoint?: string;
      event?: string;
      status?: string;
      cursor?: string;
      limit?: string;
    };
  }>("/v1/webhooks/deliveries", async (request) => {
    const { endpoint, event, status, cursor } = request.query;
    const endpointId = endpoint === undefined ? undefined : Number(endpoint);
    if (endpointId !== undefined && (!Number.isSafeInteger(endpointId) || endpointId < 1)) {
      throw new ShotlistError("invalid_request", "endpoint must be a positive integer");
    }
    if (event !== undefined && !isWebhookEventType(event)) {
      throw new ShotlistError("unknown_event", `event must be one of ${WEBHOOK_EVENTS.join(", ")}`);
    }
    if (status !== undefined && !DELIVERY_STATUSES.includes(status as DeliveryStatus)) {
      throw new ShotlistError(
        "invalid_request",
        `status must be one of ${DELIVERY_STATUSES.join(", ")}`,
      );
    }
    const limit = request.query.limit === undefined ? 100 : Number(request.query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      throw new ShotlistError("invalid_request", "limit must be an integer from 1 to 1000");
    }
    const beforeSeq = cursor === undefined ? undefined : Number(cursor);
    if (beforeSeq !== undefined && (!Number.isSafeInteger(beforeSeq) || beforeSeq < 1)) {
      throw new ShotlistError("invalid_request", "cursor is not one this API returned");
    }
    const rows = await listDeliveries(runtime.db, {
      endpointId,
      event,
      status: status as DeliveryStatus | undefined,
      beforeSeq,
      limit,
    });
    const attempts = await listDeliveryAttempts(
      runtime.db,
      rows.map((row) => row.id),
    );
    const last = rows.at(-1);
    return {
      deliveries: rows.map((row) => deliveryView(row, attempts)),
      nextCursor: rows.length === limit && last ? String(last.seq) : null,
    };
  });

  app.get<{ Params: { id: string } }>("/v1/webhooks/deliveries/:id", async (request) => {
    const delivery = await getDelivery(runtime.db, request.params.id);
    if (!delivery) {
      throw new ShotlistError("not_found", `no webhook delivery ${request.params.id}`, {
        status: 404,
      });
    }
    return deliveryView(delivery, await listDeliveryAttempts(runtime.db, [delivery.id]));
  });

  app.post<{ Params: { id: string } }>(
    "/v1/webhooks/deliveries/:id/redeliver",
    async (request, reply) => {
      const { id } = request.params;
      const refusal = await runtime.db.transaction((tx) =>
        requeueDelivery(tx, id, attemptsOf(DEFAULT_RETRY_SCHEDULE)),
      );
      if (refusal === "not_found") {
        throw new ShotlistError("not_found", `no webhook delivery ${id}`, { status: 404 });
      }
      if (refusal === "endpoint_closed") {
        throw new ShotlistError(
          "webhook_endpoint_disabled",
          `the endpoint of delivery ${id} is disabled or deleted`,
          { status: 409 },
        );
      }
      if (refusal === "in_progress") {
        throw new ShotlistError(
          "webhook_delivery_in_progress",
          `delivery ${id} is being attempted now; try again when it finishes`,
          { status: 409 },
        );
      }
      runtime.intake.onJobsCreated?.(1);
      return reply.code(202).send({ id, status: "pending" });
    },
  );
}
