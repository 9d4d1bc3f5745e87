import type { TestRuntime } from "./backends.js";

/**
 * Headers that authenticate a test's requests to /v1 routes. Every test that calls a /v1
 * route spreads these into its request headers, so API-key auth (issue 3) is one place.
 */
export async function apiHeaders(
  _test: Pick<TestRuntime, "runtime">,
  _scopes: ReadonlyArray<"read" | "write" | "admin"> = ["read", "write", "admin"],
): Promise<Record<string, string>> {
  return {};
}
