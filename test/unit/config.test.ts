import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { loadSettings } from "../../src/config/env.js";
import { loadShotList, parseShotList } from "../../src/config/shotlist.js";
import { ShotlistError } from "../../src/domain/errors.js";

function configError(text: string): ShotlistError {
  try {
    parseShotList(text, "shots.yaml");
  } catch (error) {
    assert.ok(error instanceof ShotlistError);
    assert.equal(error.code, "invalid_config");
    return error;
  }
  assert.fail("the config was accepted");
}

describe("shot-list config", () => {
  it("ships a default with hero, three angles, lifestyle and swatch grid", () => {
    const config = loadShotList();
    const apparel = config.categories.get("apparel");
    assert.deepEqual(
      apparel?.slots.map((slot) => slot.name),
      ["hero", "angle-1", "angle-2", "angle-3", "lifestyle", "swatch-grid"],
    );
    assert.ok(config.categories.size >= 3);
  });

  it("names the file, the line, the path and what was expected", () => {
    const error = configError(
      [
        "version: 1",
        "slots:",
        "  hero:",
        "    source: { reference: 0 }",
        "    chain:",
        "      - provider: local",
        "        steps:",
        "          - { op: place, fill: 1.7, background: white }",
        "categories:",
        "  apparel: { slots: [hero] }",
      ].join("\n"),
    );
    assert.match(error.message, /^shots\.yaml:8: at slots\.hero\.chain\.0\.steps\.0\.fill: /m);
    assert.match(
      error.message,
      /shots\.yaml:8: at slots\.hero\.chain\.0\.steps\.0\.background: .*#rrggbb/,
    );
  });

  it("reports an unknown slot in a category with its line", () => {
    const error = configError(
      [
        "version: 1",
        "slots:",
        "  hero:",
        "    source: { reference: 0 }",
        "    chain: [{ provider: local }]",
        "categories:",
        "  apparel:",
        "    slots: [hero, heroo]",
      ].join("\n"),
    );
    assert.match(
      error.message,
      /shots\.yaml:8: at categories\.apparel\.slots\.1: unknown slot "heroo"/,
    );
  });

  it("refuses a blur check outside 0–1 with its line and path", () => {
    const error = configError(
      [
        "version: 1",
        "slots:",
        "  hero:",
        "    source: { reference: 0 }",
        "    chain: [{ provider: local }]",
        "    checks:",
        "      blur: { max: 1.5 }",
        "categories:",
        "  apparel: { slots: [hero] }",
      ].join("\n"),
    );
    assert.match(error.message, /^shots\.yaml:7: at slots\.hero\.checks\.blur\.max: /m);
  });

  it("reports YAML syntax errors with a line", () => {
    assert.match(configError("version: 1\nslots: [\n").message, /^shots\.yaml:\d+: /);
  });

  it("refuses unknown keys instead of ignoring a typo", () => {
    const error = configError(
      [
        "version: 1",
        "slots:",
        "  hero:",
        "    source: { reference: 0 }",
        "    chian: [{ provider: local }]",
        "categories: {}",
      ].join("\n"),
    );
    assert.match(error.message, /slots\.hero/);
  });

  it("says which file could not be read", () => {
    assert.throws(
      () => loadShotList("/nonexistent/shots.yaml"),
      /cannot read shot-list file \/nonexistent\/shots\.yaml/,
    );
  });
});

describe("environment", () => {
  it("defaults to the embedded database and a local folder", () => {
    const settings = loadSettings({ SHOTLIST_DATA_DIR: "/tmp/x" });
    assert.equal(settings.databaseUrl, undefined);
    assert.equal(settings.storage, "/tmp/x/assets");
    assert.equal(settings.port, 8080);
    assert.equal(settings.publicUrl, "http://127.0.0.1:8080");
    assert.equal(settings.pixelThreads, undefined, "each command picks its own");
    assert.equal(loadSettings({ SHOTLIST_PIXEL_THREADS: "0" }).pixelThreads, 0);
  });

  it("refuses a bad value with the variable's name", () => {
    assert.throws(() => loadSettings({ PORT: "eighty" }), /PORT/);
    assert.throws(
      () => loadSettings({ SHOTLIST_DATABASE_URL: "not a url" }),
      /SHOTLIST_DATABASE_URL/,
    );
    for (const bad of ["-1", "1.5", "many", "65"]) {
      assert.throws(() => loadSettings({ SHOTLIST_PIXEL_THREADS: bad }), /SHOTLIST_PIXEL_THREADS/);
    }
  });
});
