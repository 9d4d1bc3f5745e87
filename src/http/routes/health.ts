import type { FastifyInstance } from "fastify";
import type { Runtime } from "../../runtime.js";

export function healthRoutes(app: FastifyInstance, runtime: Runtime) {
  /** Liveness: the process answers. */
  app.get("/healthz", async () => ({ status: "ok" }));

  /** Readiness: the database answers and the schema is migrated. */
  app.get("/readyz", async (_request, reply) => {
    try {
      const [row] = await runtime.db.query<{ version: number | null }>(
        "select max(version) as version from schema_migrations",
      );
      return { status: "ready", database: runtime.db.kind, schemaVersion: row?.version ?? 0 };
    } catch (error) {
      return reply
        .code(503)
        .type("application/problem+json")
        .send({
          type: "https://shotlist.dev/problems/database_error",
          title: "Service Unavailable",
          status: 503,
          code: "database_error",
          detail: `database not reachable: ${(error as Error).message}`,
        });
    }
  });

  app.get("/metrics", async (_request, reply) => {
    const text = await runtime.metrics.registry.metrics();
    return reply.type(runtime.metrics.registry.contentType).send(text);
  });
}
