import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { parse as parseSync } from "csv-parse/sync";

/** One record of a catalogue file: a product body, or why its line could not be read. */
export type CatalogueRecord = { line: number; body: unknown } | { line: number; error: string };

export type CatalogueFormat = "csv" | "jsonl";

export function formatOf(path: string): CatalogueFormat | undefined {
  if (/\.csv$/i.test(path)) return "csv";
  if (/\.(jsonl|ndjson)$/i.test(path)) return "jsonl";
  return undefined;
}

/**
 * Streams a CSV or JSONL catalogue one record at a time (constant memory on any size). A bad
 * line yields an error record with its line number and the stream goes on.
 */
export function readCatalogue(
  path: string,
  format: CatalogueFormat,
  onBytes?: (bytesRead: number) => void,
): AsyncGenerator<CatalogueRecord> {
  const stream = createReadStream(path);
  if (onBytes) stream.on("data", () => onBytes(stream.bytesRead));
  return format === "csv" ? readCsv(stream) : readJsonl(stream);
}

async function* readJsonl(stream: NodeJS.ReadableStream): AsyncGenerator<CatalogueRecord> {
  const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
  let line = 0;
  for await (const text of lines) {
    line++;
    if (text.trim() === "") continue;
    try {
      yield { line, body: JSON.parse(text) };
    } catch (error) {
      yield { line, error: `invalid JSON: ${(error as Error).message}` };
    }
  }
}

/** Known CSV columns; any other column becomes a product attribute. */
const CSV_COLUMNS = new Set(["sku", "title", "category", "variants", "reference_images"]);

/**
 * One product per physical line: quoted fields may hold commas and quotes but not newlines.
 * That is what makes a broken row cost one row: with multi-line fields an unclosed quote would
 * swallow the rest of the file (docs/decisions/0002-catalogue-files.md).
 */
async function* readCsv(stream: NodeJS.ReadableStream): AsyncGenerator<CatalogueRecord> {
  const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
  let header: string[] | undefined;
  let line = 0;
  for await (const raw of lines) {
    line++;
    const text = line === 1 ? raw.replace(/^\uFEFF/, "") : raw;
    if (text.trim() === "") continue;
    let fields: string[];
    try {
      fields = parseCsvLine(text);
    } catch (error) {
      yield { line, error: `malformed CSV row: ${(error as Error).message}` };
      continue;
    }
    if (!header) {
      header = fields.map((name) => name.trim().toLowerCase());
      if (!header.includes("sku")) {
        yield { line, error: "the header row has no sku column" };
        return;
      }
      continue;
    }
    if (fields.length !== header.length) {
      yield {
        line,
        error: `malformed CSV row: ${fields.length} fields; the header has ${header.length}`,
      };
      continue;
    }
    const row: Record<string, string> = {};
    for (const [index, name] of header.entries()) row[name] = (fields[index] ?? "").trim();
    try {
      yield { line, body: csvRowToProduct(row) };
    } catch (error) {
      yield { line, error: (error as Error).message };
    }
  }
}

function parseCsvLine(text: string): string[] {
  const [record] = parseSync(text, {
    relax_column_count: true,
    skip_empty_lines: false,
  }) as string[][];
  return record ?? [];
}

/** `sku,title,category,variants,reference_images,<attribute columns…>` → the API's product body. */
export function csvRowToProduct(row: Record<string, string>): unknown {
  const attributes: Record<string, string> = {};
  for (const [column, value] of Object.entries(row)) {
    if (!CSV_COLUMNS.has(column) && value !== "") attributes[column] = value;
  }
  const variants = splitList(row.variants).map((entry, index) => {
    const [sku, color, hex] = entry.split(":").map((part) => part.trim());
    if (!sku) throw new Error(`variants entry ${index + 1} has no sku (expected SKU:color[:#hex])`);
    const variantAttributes: Record<string, string> = {};
    if (color) variantAttributes.color = color;
    if (hex) variantAttributes.hex = hex;
    return { sku, attributes: variantAttributes };
  });
  return {
    sku: row.sku ?? "",
    title: row.title ?? "",
    category: row.category ?? "",
    attributes,
    variants,
    referenceImages: splitList(row.reference_images).map((reference) =>
      /^https?:\/\//i.test(reference) ? { url: reference } : { path: reference },
    ),
  };
}

function splitList(value: string | undefined): string[] {
  if (!value) return [];
  return value
    .split("|")
    .map((part) => part.trim())
    .filter((part) => part !== "");
}
