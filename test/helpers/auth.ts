import type { Runtime } from "../../src/runtime.js";
import { createApiKey, type Scope } from "../../src/store/api-keys.js";
import type { TestRuntime } from "./backends.js";

const issued = new WeakMap<Runtime, Map<string, Promise<Record<string, string>>>>();

/**
 * Headers that authenticate a test's requests to /v1 routes: a real key with the requested
 * scopes, made in the test runtime's database by the same function `shotlist keys create`
 * uses, one per runtime and scope set.
 */
export async function apiHeaders(
  test: Pick<TestRuntime, "runtime">,
  scopes: ReadonlyArray<Scope> = ["read", "write", "admin"],
): Promise<Record<string, string>> {
  const byScopes = issued.get(test.runtime) ?? new Map<string, Promise<Record<string, string>>>();
  issued.set(test.runtime, byScopes);
  const name = [...scopes].sort().join(",");
  let headers = byScopes.get(name);
  if (!headers) {
    headers = createApiKey(test.runtime.db, { name: `test ${name}`, scopes }).then((apiKey) => ({
      authorization: `Bearer ${apiKey.key}`,
    }));
    byScopes.set(name, headers);
  }
  return headers;
}
