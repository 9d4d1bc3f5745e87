import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { importCatalogue } from "../../src/cli/import.js";
import { sha256Hex } from "../../src/domain/canonical.js";
import { ShotlistError } from "../../src/domain/errors.js";
import { submitProduct } from "../../src/intake/submit.js";
import { luminanceGrid } from "../../src/pipeline/checks.js";
import { DEFAULT_MAX_PIXELS, decodeImage } from "../../src/pipeline/decode.js";
import { referenceLuminanceGrid } from "../../src/store/products.js";
import { BACKENDS, createTestRuntime, type TestRuntime } from "../helpers/backends.js";
import { pngBomb } from "../helpers/images.js";

const IMAGES = fileURLToPath(new URL("../../examples/catalogue/images/", import.meta.url));
const photo = readFileSync(join(IMAGES, "MUG-STONEWARE-0.jpg"));
const quiet = () => {};

async function rejection(promise: Promise<unknown>): Promise<ShotlistError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ShotlistError, `expected a ShotlistError, got ${String(error)}`);
    return error;
  }
  assert.fail("the input was accepted");
}

for (const backend of BACKENDS) {
  describe(`bad input at the intake on ${backend}`, () => {
    let env: TestRuntime;
    let bomb: Buffer;
    let server: Server;
    let serverUrl: string;
    before(async () => {
      env = await createTestRuntime(backend, { SHOTLIST_MAX_PIXELS: "30000000" });
      bomb = pngBomb();
      server = createServer((_request, response) => {
        response.writeHead(200, { "content-type": "image/jpeg" }).end(photo);
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      serverUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/photo.jpg`;
    });
    after(async () => {
      server.close();
      await env.cleanup();
    });

    const product = (overrides: Record<string, unknown> = {}) => ({
      sku: "MUG-1",
      title: "Mug",
      category: "home",
      referenceImages: [{ base64: photo.toString("base64") }],
      ...overrides,
    });

    async function nothingWritten() {
      const [row] = await env.runtime.db.query<{ products: number; jobs: number; recipes: number }>(
        `select (select count(*)::integer from products) as products, (select count(*)::integer from jobs) as jobs,
           (select count(*)::integer from recipes) as recipes`,
      );
      assert.deepEqual(row, { products: 0, jobs: 0, recipes: 0 });
    }

    const badSkus = ["", "../x", "a/../../etc", "x".repeat(200), "bad\u0007sku", "white space"];
    for (const sku of badSkus) {
      it(`refuses the SKU ${JSON.stringify(sku).slice(0, 24)} and writes nothing`, async () => {
        const error = await rejection(submitProduct(env.runtime.intake, product({ sku })));
        assert.ok(["invalid_sku", "invalid_request"].includes(error.code), error.code);
        await nothingWritten();
      });
    }

    it("refuses an unknown category, naming the known ones", async () => {
      const error = await rejection(
        submitProduct(env.runtime.intake, product({ category: "spaceships" })),
      );
      assert.equal(error.code, "unknown_category");
      assert.match(error.message, /apparel/);
      await nothingWritten();
    });

    it("refuses a reference image that does not decode", async () => {
      const error = await rejection(
        submitProduct(
          env.runtime.intake,
          product({
            referenceImages: [{ base64: Buffer.from("not an image").toString("base64") }],
          }),
        ),
      );
      assert.equal(error.code, "reference_image_undecodable");
      assert.match(error.message, /referenceImages\.0/);
      await nothingWritten();
    });

    it("refuses a truncated JPEG", async () => {
      const truncated = photo.subarray(0, Math.floor(photo.length / 2));
      const error = await rejection(
        submitProduct(
          env.runtime.intake,
          product({ referenceImages: [{ base64: truncated.toString("base64") }] }),
        ),
      );
      assert.equal(error.code, "reference_image_undecodable");
      await nothingWritten();
    });

    it("refuses a decompression bomb by its declared size", async () => {
      const error = await rejection(
        submitProduct(
          env.runtime.intake,
          product({ referenceImages: [{ base64: bomb.toString("base64") }] }),
        ),
      );
      assert.equal(error.code, "reference_image_too_large");
      await nothingWritten();
    });

    it("refuses a reference path from an HTTP body, and a missing file from an import", async () => {
      const fromHttp = await rejection(
        submitProduct(env.runtime.intake, product({ referenceImages: [{ path: "/etc/passwd" }] })),
      );
      assert.equal(fromHttp.code, "invalid_request");
      const missing = await rejection(
        submitProduct(env.runtime.intake, product({ referenceImages: [{ path: "nope.jpg" }] }), {
          baseDir: tmpdir(),
        }),
      );
      assert.equal(missing.code, "reference_image_missing");
      await nothingWritten();
    });

    it("refuses reference URLs that resolve to loopback or private addresses", async () => {
      for (const url of [
        serverUrl,
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.8/x.jpg",
        "http://[::1]/x.jpg",
      ]) {
        const error = await rejection(
          submitProduct(env.runtime.intake, product({ referenceImages: [{ url }] })),
        );
        assert.equal(error.code, "reference_url_forbidden", url);
      }
      await nothingWritten();
    });

    it("refuses unknown fields and too many variants", async () => {
      const unknown = await rejection(
        submitProduct(env.runtime.intake, product({ colour: "red" })),
      );
      assert.equal(unknown.code, "invalid_request");
      const variants = Array.from({ length: 251 }, (_, index) => ({
        sku: `V-${index}`,
        attributes: {},
      }));
      const tooMany = await rejection(submitProduct(env.runtime.intake, product({ variants })));
      assert.match(tooMany.message, /at most 250 variants/);
      await nothingWritten();
    });

    it("imports the good rows of a CSV and reports each bad row by its line", async () => {
      const dir = mkdtempSync(join(tmpdir(), "shotlist-csv-"));
      writeFileSync(join(dir, "photo.jpg"), photo);
      writeFileSync(join(dir, "junk.jpg"), "junk");
      writeFileSync(
        join(dir, "catalogue.csv"),
        [
          "sku,title,category,color,variants,reference_images",
          "GOOD-1,Good Mug,home,white,,photo.jpg",
          'BROKEN-2,"Unclosed quote,home,red,,photo.jpg',
          "GOOD-3,Other Mug,home,navy,GOOD-3-RED:red|GOOD-3-BLUE:blue,photo.jpg",
          "../ESCAPE,Bad Sku,home,red,,photo.jpg",
          "EXTRA-5,Too,many,fields,,photo.jpg,extra",
          "UNKNOWN-6,Rocket,spaceships,red,,photo.jpg",
          "JUNK-7,Junk Photo,home,red,,junk.jpg",
          "MISSING-8,Missing Photo,home,red,,missing.jpg",
          "GOOD-9,Third Mug,home,sand,,photo.jpg",
        ].join("\n"),
      );
      const report = await importCatalogue(env.runtime.intake, join(dir, "catalogue.csv"), {
        dryRun: false,
        print: quiet,
      });
      assert.equal(report.accepted, 3);
      assert.deepEqual(
        report.rejected.map((bad) => bad.line),
        [3, 5, 6, 7, 8, 9],
      );
      assert.match(report.rejected[0]?.error ?? "", /malformed CSV row/);
      assert.match(report.rejected[1]?.error ?? "", /invalid_sku/);
      assert.match(report.rejected[4]?.error ?? "", /reference_image_undecodable/);
      assert.match(report.rejected[5]?.error ?? "", /reference_image_missing/);
      const products = await env.runtime.db.query<{ sku: string }>(
        "select sku from products order by sku",
      );
      assert.deepEqual(
        products.map((row) => row.sku),
        ["GOOD-1", "GOOD-3", "GOOD-9"],
      );
    });

    it("plans a dry run without writing anything", async () => {
      const dir = mkdtempSync(join(tmpdir(), "shotlist-dry-"));
      writeFileSync(join(dir, "photo.jpg"), photo);
      writeFileSync(
        join(dir, "catalogue.jsonl"),
        [
          JSON.stringify({
            sku: "DRY-1",
            title: "Dry Mug",
            category: "home",
            referenceImages: [{ path: "photo.jpg" }],
          }),
          "{not json",
          JSON.stringify({
            sku: "DRY-3",
            title: "Dry Tee",
            category: "apparel",
            variants: [{ sku: "DRY-3-RED", attributes: { color: "red" } }],
          }),
        ].join("\n"),
      );
      const before = await env.runtime.db.query("select sku from products");
      const lines: string[] = [];
      const report = await importCatalogue(env.runtime.intake, join(dir, "catalogue.jsonl"), {
        dryRun: true,
        print: (line) => lines.push(line),
      });
      assert.equal(report.accepted, 2);
      assert.deepEqual(
        report.rejected.map((bad) => bad.line),
        [2],
      );
      assert.equal(report.slotsPlanned, 5 + 6);
      assert.ok(lines.some((line) => line.startsWith("plan DRY-1 (home): hero, angle-1")));
      assert.deepEqual(await env.runtime.db.query("select sku from products"), before);
    });
  });

  describe(`reference photos' luminance grids on ${backend}`, () => {
    let env: TestRuntime;
    before(async () => {
      env = await createTestRuntime(backend);
    });
    after(async () => {
      await env.cleanup();
    });

    it("stores each photo's grid at intake, as the notInput check measures it, and fills an older row's", async () => {
      const sha256 = sha256Hex(photo);
      const submit = (sku: string) =>
        submitProduct(env.runtime.intake, {
          sku,
          title: "Mug",
          category: "home",
          referenceImages: [{ base64: photo.toString("base64") }],
        });
      await submit("GRID-1");
      const expected = luminanceGrid(
        (await decodeImage(photo, { maxPixels: DEFAULT_MAX_PIXELS })).preview,
      );
      const stored = await referenceLuminanceGrid(env.runtime.db, sha256);
      assert.ok(stored, "a grid is stored");
      assert.equal(stored.length, 32 * 32);
      assert.deepEqual([...stored], [...Float32Array.from(expected)]);
      // A row saved before the grid existed: none, so the check would decode the photo; the
      // next intake of the same photo measures it and fills it in.
      await env.runtime.db.query(
        "update reference_images set luminance_grid = null where sha256 = $1",
        [sha256],
      );
      assert.equal(await referenceLuminanceGrid(env.runtime.db, sha256), undefined);
      await submit("GRID-2");
      assert.deepEqual(
        [...((await referenceLuminanceGrid(env.runtime.db, sha256)) ?? [])],
        [...stored],
      );
    });
  });
}
