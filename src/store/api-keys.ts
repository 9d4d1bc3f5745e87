import { createHash, randomBytes } from "node:crypto";
import { ShotlistError } from "../domain/errors.js";
import type { Queryable } from "./db.js";

export const SCOPES = ["read", "write", "admin"] as const;
export type Scope = (typeof SCOPES)[number];

/** Prefix of every key, so a leaked one is recognisable (secret scanners, logs). */
const KEY_PREFIX = "shl_";

export interface ApiKey {
  id: number;
  name: string;
  prefix: string;
  scopes: Scope[];
  createdAt: Date;
  revokedAt: Date | null;
}

interface ApiKeyRow {
  id: number;
  name: string;
  prefix: string;
  scopes: Scope[];
  created_at: Date;
  revoked_at: Date | null;
}

const toApiKey = (row: ApiKeyRow): ApiKey => ({
  id: row.id,
  name: row.name,
  prefix: row.prefix,
  scopes: row.scopes,
  createdAt: row.created_at,
  revokedAt: row.revoked_at,
});

/**
 * SHA-256, not a slow password hash: keys are 256 random bits, so there is nothing to guess,
 * and the per-request check stays one indexed lookup instead of ~50 ms of bcrypt/argon2.
 */
export function hashApiKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}

export function parseScopes(text: string): Scope[] {
  const scopes = [
    ...new Set(
      text
        .split(",")
        .map((scope) => scope.trim())
        .filter(Boolean),
    ),
  ];
  if (scopes.length === 0) {
    throw new ShotlistError("invalid_request", "give at least one scope: read, write, admin");
  }
  for (const scope of scopes) {
    if (!(SCOPES as readonly string[]).includes(scope)) {
      throw new ShotlistError("invalid_request", `unknown scope ${scope}; use read, write, admin`);
    }
  }
  return scopes as Scope[];
}

/** Makes a key; the returned `key` is the only time it exists in clear. */
export async function createApiKey(
  db: Queryable,
  options: { name: string; scopes: readonly Scope[] },
): Promise<ApiKey & { key: string }> {
  const key = `${KEY_PREFIX}${randomBytes(32).toString("base64url")}`;
  const [row] = await db.query<ApiKeyRow>(
    `insert into api_keys (name, key_hash, prefix, scopes) values ($1, $2, $3, $4)
     returning id, name, prefix, scopes, created_at, revoked_at`,
    [options.name, hashApiKey(key), key.slice(0, KEY_PREFIX.length + 6), [...options.scopes]],
  );
  if (!row) throw new ShotlistError("database_error", "api key insert returned no row");
  return { ...toApiKey(row), key };
}

export async function listApiKeys(db: Queryable): Promise<ApiKey[]> {
  const rows = await db.query<ApiKeyRow>(
    "select id, name, prefix, scopes, created_at, revoked_at from api_keys order by id",
  );
  return rows.map(toApiKey);
}

/** Revokes a key (idempotent); false when there is no such key. */
export async function revokeApiKey(db: Queryable, id: number): Promise<boolean> {
  const rows = await db.query(
    "update api_keys set revoked_at = coalesce(revoked_at, now()) where id = $1 returning id",
    [id],
  );
  return rows.length > 0;
}

/** The active key with this clear text, or undefined (unknown or revoked). */
export async function findActiveApiKey(db: Queryable, key: string): Promise<ApiKey | undefined> {
  const [row] = await db.query<ApiKeyRow>(
    `select id, name, prefix, scopes, created_at, revoked_at from api_keys
     where key_hash = $1 and revoked_at is null`,
    [hashApiKey(key)],
  );
  return row ? toApiKey(row) : undefined;
}

export async function hasActiveAdminKey(db: Queryable): Promise<boolean> {
  const rows = await db.query(
    "select 1 from api_keys where revoked_at is null and 'admin' = any(scopes) limit 1",
  );
  return rows.length > 0;
}
