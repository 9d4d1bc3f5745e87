import type { FastifyInstance } from "fastify";
import { ShotlistError } from "../../domain/errors.js";
import { attemptsOf, DEFAULT_RETRY_SCHEDULE } from "../../integrations/webhooks/schedule.js";
import type { Runtime } from "../../runtime.js";
import {
  type DeliveryAttemptRow,
  type DeliveryRow,
  getDelivery,
  listDeliveries,
  listDeliveryAttempts,
  requeueDelivery,
} from "../../store/webhook-deliveries.js";
import {
  deliveryIdParamsSchema,
  deliveryListQueryCode,
  deliveryListQuerySchema,
  parseRequestPart,
} from "../schemas.js";

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
  app.get("/v1/webhooks/deliveries", async (request) => {
    const {
      endpoint: endpointId,
      event,
      status,
      limit,
      cursor: beforeSeq,
    } = parseRequestPart(deliveryListQuerySchema, request.query, deliveryListQueryCode);
    const rows = await listDeliveries(runtime.db, {
      endpointId,
      event,
      status,
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

  app.get("/v1/webhooks/deliveries/:id", async (request) => {
    const { id } = parseRequestPart(deliveryIdParamsSchema, request.params);
    const delivery = await getDelivery(runtime.db, id);
    if (!delivery) {
      throw new ShotlistError("not_found", `no webhook delivery ${id}`, { status: 404 });
    }
    return deliveryView(delivery, await listDeliveryAttempts(runtime.db, [delivery.id]));
  });

  app.post("/v1/webhooks/deliveries/:id/redeliver", async (request, reply) => {
    const { id } = parseRequestPart(deliveryIdParamsSchema, request.params);
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
  });
}
