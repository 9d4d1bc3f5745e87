import type { FastifyInstance } from "fastify";
import type { Runtime } from "../../runtime.js";
import { buildOpenApiDocument, type JsonObject } from "../openapi.js";

/** The document changes only with a deploy; five minutes of caching costs nobody anything. */
const DOCS_CACHE_CONTROL = "public, max-age=300";

const escapeHtml = (text: unknown): string =>
  String(text).replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);

const METHODS = ["get", "post", "put", "patch", "delete"] as const;

/** Replaces `#/components/schemas/X` references by the schema itself (the page is read alone). */
function inlineRefs(value: unknown, schemas: Record<string, unknown>): unknown {
  if (Array.isArray(value)) return value.map((item) => inlineRefs(item, schemas));
  if (value === null || typeof value !== "object") return value;
  const ref = (value as { $ref?: unknown }).$ref;
  if (typeof ref === "string" && ref.startsWith("#/components/schemas/")) {
    return inlineRefs(schemas[ref.slice("#/components/schemas/".length)], schemas);
  }
  return Object.fromEntries(
    Object.entries(value).map(([key, item]) => [key, inlineRefs(item, schemas)]),
  );
}

const schemaBlock = (schema: unknown) =>
  `<pre>${escapeHtml(JSON.stringify(schema, null, 2))}</pre>`;

/** The docs page: every operation of the OpenAPI document, rendered server-side, no scripts. */
export function renderDocsPage(document: JsonObject): string {
  const info = document.info as { title: string; version: string; description: string };
  const components = document.components as { schemas: Record<string, unknown> };
  const paths = document.paths as Record<string, Record<string, JsonObject>>;
  const operations = Object.entries(paths).flatMap(([path, item]) =>
    METHODS.filter((method) => item[method]).map((method) => ({
      path,
      method,
      operation: item[method] as JsonObject,
    })),
  );
  const toc = operations
    .map(
      ({ path, method, operation }) =>
        `<li><a href="#${escapeHtml(operation.operationId)}"><code>${method.toUpperCase()} ${escapeHtml(path)}</code></a> ${escapeHtml(operation.summary)}</li>`,
    )
    .join("\n");
  const sections = operations
    .map(({ path, method, operation }) => {
      const scope = operation["x-shotlist-scope"];
      const parameters = (operation.parameters ?? []) as JsonObject[];
      const body = operation.requestBody as
        | { description?: string; content: Record<string, { schema: unknown }> }
        | undefined;
      const responses = operation.responses as Record<
        string,
        { description: string; headers?: Record<string, JsonObject>; content?: JsonObject }
      >;
      const parameterRows = parameters
        .map(
          (parameter) =>
            `<tr><td><code>${escapeHtml(parameter.name)}</code></td><td>${escapeHtml(parameter.in)}</td><td>${parameter.required ? "yes" : "no"}</td><td><code>${escapeHtml(JSON.stringify(parameter.schema))}</code></td><td>${escapeHtml(parameter.description ?? "")}</td></tr>`,
        )
        .join("");
      const bodyHtml = body
        ? `<h4>Request body</h4>${body.description ? `<p>${escapeHtml(body.description)}</p>` : ""}${Object.entries(
            body.content,
          )
            .map(
              ([type, media]) =>
                `<p><code>${escapeHtml(type)}</code></p>${schemaBlock(inlineRefs(media.schema, components.schemas))}`,
            )
            .join("")}`
        : "";
      const responseHtml = Object.entries(responses)
        .map(([status, response]) => {
          const headers = Object.entries(response.headers ?? {})
            .map(
              ([name, header]) =>
                `<li><code>${escapeHtml(name)}</code>: ${escapeHtml(header.description)}</li>`,
            )
            .join("");
          const content = Object.entries(
            (response.content ?? {}) as Record<string, { schema?: unknown }>,
          )
            .map(([type, media]) => {
              const isProblem = type === "application/problem+json";
              return `<p><code>${escapeHtml(type)}</code>${isProblem ? ' (<a href="#problem">Problem</a>)' : ""}</p>${
                isProblem || media.schema === undefined
                  ? ""
                  : `<details><summary>schema</summary>${schemaBlock(inlineRefs(media.schema, components.schemas))}</details>`
              }`;
            })
            .join("");
          return `<tr><td><b>${escapeHtml(status)}</b></td><td>${escapeHtml(response.description)}${headers ? `<ul>${headers}</ul>` : ""}${content}</td></tr>`;
        })
        .join("");
      return `<section class="operation" id="${escapeHtml(operation.operationId)}">
<h3><span class="method">${method.toUpperCase()}</span> <code>${escapeHtml(path)}</code></h3>
<p>${escapeHtml(operation.summary)}</p>
${operation.description ? `<p>${escapeHtml(operation.description)}</p>` : ""}
<p class="auth">${scope ? `API key with the <b>${escapeHtml(scope)}</b> scope` : "open: no API key"}</p>
${parameterRows ? `<h4>Parameters</h4><table><tr><th>name</th><th>in</th><th>required</th><th>schema</th><th>meaning</th></tr>${parameterRows}</table>` : ""}
${bodyHtml}
<h4>Responses</h4><table>${responseHtml}</table>
</section>`;
    })
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(info.title)} ${escapeHtml(info.version)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1100px;padding:0 16px;color:#1d1d1f;background:#fafafa}
h1{font-size:22px}h3{font-size:16px;margin:0 0 6px}h4{font-size:13px;margin:12px 0 4px;text-transform:uppercase;color:#555}
.operation{background:#fff;border:1px solid #e3e3e3;border-radius:8px;padding:12px 16px;margin:16px 0}
.method{display:inline-block;min-width:56px;font-weight:700}.auth{color:#555}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #e3e3e3;padding:4px 8px;text-align:left;vertical-align:top}
pre{background:#f4f4f4;padding:8px;overflow:auto;font-size:12px;max-height:420px}code{font-size:12px}
</style></head><body>
<h1>${escapeHtml(info.title)} <small>${escapeHtml(info.version)}</small></h1>
<p>${escapeHtml(info.description)}</p>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI 3.1).</p>
<h2>Operations</h2>
<ul>
${toc}
</ul>
${sections}
${webhookSections(document, components.schemas)}
<section class="operation" id="problem"><h3>Problem (<code>application/problem+json</code>, RFC 9457)</h3>
${schemaBlock(components.schemas.Problem)}</section>
</body></html>`;
}

/** The document's `webhooks`: what Shotlist sends to subscribed endpoints, one per event. */
function webhookSections(document: JsonObject, schemas: Record<string, unknown>): string {
  const webhooks = (document.webhooks ?? {}) as Record<string, { post: JsonObject }>;
  const entries = Object.entries(webhooks);
  if (entries.length === 0) return "";
  return `<h2>Webhooks out</h2>
<p>Sent to the endpoints of POST /v1/webhook-endpoints, signed per Standard Webhooks (<code>webhook-id</code>, <code>webhook-timestamp</code>, <code>webhook-signature</code>).</p>
${entries
  .map(([event, { post }]) => {
    const body = post.requestBody as { content: Record<string, { schema: unknown }> };
    return `<section class="operation" id="${escapeHtml(post.operationId)}">
<h3><span class="method">EVENT</span> <code>${escapeHtml(event)}</code></h3>
<p>${escapeHtml(post.summary)}</p>
<details><summary>payload</summary>${schemaBlock(inlineRefs(body.content["application/json"]?.schema, schemas))}</details>
</section>`;
  })
  .join("\n")}`;
}

/** `GET /openapi.json` and `GET /docs`: the HTTP contract, open to anyone (no API key). */
export function docsRoutes(app: FastifyInstance, runtime: Runtime) {
  const document = buildOpenApiDocument({ publicUrl: runtime.settings.publicUrl });
  const documentJson = JSON.stringify(document);
  const page = renderDocsPage(document);

  app.get("/openapi.json", async (_request, reply) =>
    reply
      .type("application/json; charset=utf-8")
      .header("Cache-Control", DOCS_CACHE_CONTROL)
      .send(documentJson),
  );

  app.get("/docs", async (_request, reply) =>
    reply.type("text/html; charset=utf-8").header("Cache-Control", DOCS_CACHE_CONTROL).send(page),
  );
}
