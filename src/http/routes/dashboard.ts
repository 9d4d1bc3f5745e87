import type { FastifyInstance } from "fastify";
import type { Runtime } from "../../runtime.js";
import { catalogueCoverage } from "../../store/coverage.js";
import { listJobs, queueDepth } from "../../store/jobs.js";

const escapeHtml = (text: unknown): string =>
  String(text).replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);

const percent = (ratio: number) => `${(ratio * 100).toFixed(1)}%`;

/**
 * The operator's page (DESIGN §10): coverage, queue, review queue and recent assets. Server-
 * rendered HTML from the same repository functions the API uses; no build step. The page is
 * open; the /v1 links it shows need an API key, which one small script asks for once and keeps
 * in sessionStorage (gone when the tab closes), sending it as `Authorization: Bearer`.
 */
// A browser cannot put a Bearer header on a plain link: /v1 links are fetched with the key and
// their JSON shown in place (the address bar shows the API URL, for copying).
const API_LINK_SCRIPT = `
document.addEventListener("click", async (event) => {
  const link = event.target instanceof Element ? event.target.closest("a[href^='/v1/']") : null;
  if (!link || event.button !== 0 || event.metaKey || event.ctrlKey) return;
  event.preventDefault();
  let key = sessionStorage.getItem("shotlist.apiKey");
  if (!key) {
    key = prompt("API key with the read scope (shotlist keys create --scopes read)");
    if (!key) return;
    sessionStorage.setItem("shotlist.apiKey", key.trim());
  }
  const response = await fetch(link.getAttribute("href"), {
    headers: { authorization: "Bearer " + sessionStorage.getItem("shotlist.apiKey") },
  });
  if (response.status === 401) sessionStorage.removeItem("shotlist.apiKey");
  const text = JSON.stringify(await response.json(), null, 2);
  history.pushState(null, "", link.getAttribute("href"));
  const pre = document.createElement("pre");
  pre.textContent = text;
  document.body.replaceChildren(pre);
});
addEventListener("popstate", () => location.reload());
`;

export function dashboardRoutes(app: FastifyInstance, runtime: Runtime) {
  app.get("/", async (_request, reply) => {
    const [coverage, depth, review, recent] = await Promise.all([
      catalogueCoverage(runtime.db),
      queueDepth(runtime.db),
      runtime.db.query<{
        product_sku: string;
        slot: string;
        reason: string | null;
        updated_at: Date;
      }>(
        `select product_sku, slot, reason, updated_at from product_slots
         where state = 'needs_review' order by updated_at desc limit 50`,
      ),
      runtime.db.query<{
        product_sku: string;
        slot: string;
        sha256: string;
        ext: string;
        id: number;
      }>(
        `select ps.product_sku, ps.slot, a.sha256, a.ext, a.id from product_slots ps
         join assets a on a.id = ps.asset_id where ps.state = 'published'
         order by ps.updated_at desc limit 24`,
      ),
    ]);
    const failedJobs = await listJobs(runtime.db, { state: "needs_review", limit: 20 });
    const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shotlist</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d1d1f;background:#fafafa}
h1{font-size:22px;margin:0 0 16px}h2{font-size:16px;margin:28px 0 8px}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{background:#fff;border:1px solid #e3e3e3;border-radius:8px;padding:12px 16px;min-width:140px}
.card b{display:block;font-size:24px}table{border-collapse:collapse;background:#fff;width:100%}
td,th{border:1px solid #e3e3e3;padding:4px 8px;text-align:left;vertical-align:top}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(140px,1fr));gap:8px}
.grid figure{margin:0;background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:6px}
.grid img{width:100%;height:auto;display:block}.grid figcaption{font-size:12px;color:#555}
</style></head><body>
<h1>Shotlist</h1>
<section class="cards" id="coverage">
<div class="card">Catalogue coverage<b data-testid="product-coverage">${percent(coverage.productCoverage)}</b>${coverage.completeProducts} of ${coverage.products} products complete</div>
<div class="card">Slot coverage<b>${percent(coverage.slotCoverage)}</b>${coverage.publishedSlots} of ${coverage.requiredSlots} required slots</div>
${depth.map((row) => `<div class="card">${escapeHtml(row.state)}<b>${row.count}</b>jobs</div>`).join("")}
</section>
<h2>By slot</h2>
<table><tr><th>slot</th><th>required</th><th>published</th><th>pending</th><th>needs review</th><th>failed</th></tr>
${coverage.bySlot.map((row) => `<tr><td>${escapeHtml(row.slot)}</td><td>${row.required}</td><td>${row.published}</td><td>${row.pending}</td><td>${row.needsReview}</td><td>${row.failed}</td></tr>`).join("")}
</table>
<h2>Review queue</h2>
<table id="review"><tr><th>product</th><th>slot</th><th>reason</th></tr>
${review.map((row) => `<tr><td><a href="/v1/products/${encodeURIComponent(row.product_sku)}">${escapeHtml(row.product_sku)}</a></td><td>${escapeHtml(row.slot)}</td><td>${escapeHtml(row.reason ?? "")}</td></tr>`).join("") || `<tr><td colspan="3">empty</td></tr>`}
</table>
<h2>Recently published</h2>
<div class="grid">
${recent.map((row) => `<figure><a href="/v1/assets/${row.id}"><img loading="lazy" src="/a/${row.sha256}.${row.ext}" alt="${escapeHtml(`${row.product_sku} ${row.slot}`)}"></a><figcaption>${escapeHtml(row.product_sku)} · ${escapeHtml(row.slot)}</figcaption></figure>`).join("")}
</div>
<h2>Jobs needing review</h2>
<table><tr><th>job</th><th>key</th><th>attempts</th><th>last error</th></tr>
${failedJobs.map((job) => `<tr><td><a href="/v1/jobs/${job.id}">${job.id}</a></td><td>${escapeHtml(job.key.slice(0, 24))}…</td><td>${job.attempts}</td><td>${escapeHtml(job.last_error ?? "")}</td></tr>`).join("") || `<tr><td colspan="4">none</td></tr>`}
</table>
<script>${API_LINK_SCRIPT}</script>
</body></html>`;
    return reply.type("text/html; charset=utf-8").header("Cache-Control", "no-store").send(html);
  });
}
