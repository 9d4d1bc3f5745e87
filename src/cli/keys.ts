import { ShotlistError } from "../domain/errors.js";
import {
  type ApiKey,
  createApiKey,
  listApiKeys,
  parseScopes,
  revokeApiKey,
} from "../store/api-keys.js";
import type { Queryable } from "../store/db.js";

/** `shotlist keys create`: prints only the key, on its own line, so scripts can capture it. */
export async function createKeyCommand(
  db: Queryable,
  options: { scopes: string; name?: string },
  print: (line: string) => void,
): Promise<void> {
  const scopes = parseScopes(options.scopes);
  const created = await createApiKey(db, { name: options.name ?? "cli", scopes });
  print(created.key);
}

export function formatApiKeys(keys: readonly ApiKey[]): string {
  if (keys.length === 0) return "no API keys; make one with `shotlist keys create --scopes read`";
  return keys
    .map((key) =>
      [
        String(key.id).padStart(4),
        `${key.prefix}…`,
        key.scopes.join(",").padEnd(16),
        key.revokedAt ? `revoked ${key.revokedAt.toISOString()}` : "active",
        `created ${key.createdAt.toISOString()}`,
        key.name,
      ].join("  "),
    )
    .join("\n");
}

export async function revokeKeyCommand(
  db: Queryable,
  idText: string,
  print: (line: string) => void,
): Promise<void> {
  const id = Number(idText);
  if (!Number.isSafeInteger(id) || id < 1) {
    throw new ShotlistError("invalid_request", `key id must be a positive integer, got ${idText}`);
  }
  if (!(await revokeApiKey(db, id))) {
    throw new ShotlistError("not_found", `no API key ${id}`, { status: 404 });
  }
  print(`revoked API key ${id}`);
}

export async function listKeysCommand(db: Queryable, print: (line: string) => void) {
  print(formatApiKeys(await listApiKeys(db)));
}
