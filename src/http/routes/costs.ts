import type { FastifyInstance } from "fastify";
import type { Runtime } from "../../runtime.js";
import { costReport } from "../../store/provider-calls.js";
import { costsQuerySchema, parseRequestPart } from "../schemas.js";

export function costRoutes(app: FastifyInstance, runtime: Runtime) {
  app.get("/v1/costs", async (request) => {
    const { since } = parseRequestPart(costsQuerySchema, request.query);
    return costReport(runtime.db, since === undefined ? null : new Date(since));
  });
}
