import type { FastifyInstance } from "fastify";
import { z } from "zod";
import { ShotlistError } from "../../domain/errors.js";
import type { Runtime } from "../../runtime.js";
import { type ApiKey, createApiKey, listApiKeys, revokeApiKey } from "../../store/api-keys.js";
import { createKeySchema, idParamsSchema, parseRequestPart } from "../schemas.js";

const keyIdParamsSchema = idParamsSchema("key");

const keyView = (key: ApiKey) => ({
  id: key.id,
  name: key.name,
  prefix: key.prefix,
  scopes: key.scopes,
  createdAt: key.createdAt,
  revokedAt: key.revokedAt,
});

/** Key management over HTTP, the `shotlist keys` commands' twin; every route needs `admin`. */
export function keyRoutes(app: FastifyInstance, runtime: Runtime) {
  const admin = { config: { scope: "admin" as const } };
  app.get("/v1/keys", admin, async () => ({
    keys: (await listApiKeys(runtime.db)).map(keyView),
  }));

  app.post("/v1/keys", admin, async (request, reply) => {
    const parsed = createKeySchema.safeParse(request.body);
    if (!parsed.success) {
      throw new ShotlistError("invalid_request", z.prettifyError(parsed.error), { status: 422 });
    }
    const created = await createApiKey(runtime.db, parsed.data);
    // The only time the key exists in clear: shown once, never again.
    return reply
      .code(201)
      .header("cache-control", "no-store")
      .send({ ...keyView(created), key: created.key });
  });

  app.delete("/v1/keys/:id", admin, async (request, reply) => {
    const { id } = parseRequestPart(keyIdParamsSchema, request.params);
    if (!(await revokeApiKey(runtime.db, id))) {
      throw new ShotlistError("not_found", `no API key ${id}`, { status: 404 });
    }
    return reply.code(204).send();
  });
}
