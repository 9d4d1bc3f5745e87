import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { FastifyInstance } from "fastify";
import { type BrowserContext, chromium } from "playwright-core";
import { buildApp } from "../../src/http/app.js";
import { submitProduct } from "../../src/intake/submit.js";
import type { Worker } from "../../src/queue/worker.js";
import { countOpenJobs } from "../../src/store/jobs.js";
import { apiHeaders } from "../helpers/auth.js";
import { createTestRuntime, type TestRuntime, waitFor } from "../helpers/backends.js";

const IMAGES = fileURLToPath(new URL("../../examples/catalogue/images/", import.meta.url));

describe("the dashboard in a real browser", () => {
  let env: TestRuntime;
  let app: FastifyInstance;
  let worker: Worker;
  let browser: BrowserContext;
  let baseUrl: string;
  const profile = mkdtempSync(join(tmpdir(), "shotlist-chromium-"));

  before(async () => {
    env = await createTestRuntime("pglite");
    worker = env.runtime.startWorker({ pollMs: 20 });
    await submitProduct(env.runtime.intake, {
      sku: "VASE-AMPHORA",
      title: "Amphora Vase",
      category: "home",
      referenceImages: [0, 1].map((view) => ({
        base64: readFileSync(`${IMAGES}VASE-AMPHORA-${view}.jpg`).toString("base64"),
      })),
    });
    await waitFor(
      async () => (await countOpenJobs(env.runtime.db)) === 0,
      "jobs to finish",
      60_000,
    );
    app = await buildApp(env.runtime);
    await app.listen({ port: 0, host: "127.0.0.1" });
    const address = app.server.address();
    baseUrl = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
    // A fresh --user-data-dir, passed the way Playwright wants it.
    browser = await chromium.launchPersistentContext(profile, {
      executablePath: "/usr/bin/chromium",
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
      ],
    });
  });
  after(async () => {
    await browser?.close();
    await app?.close();
    await worker?.stop();
    await env?.cleanup();
    rmSync(profile, { recursive: true, force: true });
  });

  it("shows coverage, the review queue with its reason, and published images that load", async () => {
    const page = await browser.newPage();
    // The page asks for a read key once, on the first /v1 link followed.
    const readKey = (await apiHeaders(env, ["read"])).authorization?.replace("Bearer ", "") ?? "";
    let asked = 0;
    page.on("dialog", (dialog) => {
      asked++;
      void dialog.accept(readKey);
    });
    const response = await page.goto(`${baseUrl}/`);
    assert.equal(response?.status(), 200);
    // hero, angle-1 and lifestyle published; angle-2 and angle-3 lack photos: 3 of 5 slots.
    assert.equal(await page.getByTestId("product-coverage").textContent(), "0.0%");
    // biome-ignore lint/performance/useDomNodeTextContent: the rendered text keeps table cells apart
    assert.match(await page.locator("#coverage").innerText(), /3 of 5 required slots/);
    // biome-ignore lint/performance/useDomNodeTextContent: the rendered text keeps table cells apart
    const review = await page.locator("#review").innerText();
    assert.match(review, /VASE-AMPHORA\s+angle-2\s+.*reference photo #3/);
    const images = page.locator(".grid img");
    assert.equal(await images.count(), 3);
    await page.waitForFunction(() =>
      Array.from(document.querySelectorAll<HTMLImageElement>(".grid img")).every(
        (image) => image.complete && image.naturalWidth > 0,
      ),
    );
    await page.screenshot({ path: join(env.dataDir, "dashboard.png"), fullPage: true });
    await images.first().click();
    await page.waitForURL(/\/v1\/assets\/\d+$/);
    // biome-ignore lint/performance/useDomNodeTextContent: the rendered text keeps table cells apart
    const provenance = JSON.parse(await page.locator("body").innerText()) as {
      recipe: { provider: string };
    };
    assert.equal(provenance.recipe.provider, "local");
    assert.equal(asked, 1);
    await page.close();
  });
});
