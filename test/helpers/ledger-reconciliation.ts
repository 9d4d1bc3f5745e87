import assert from "node:assert/strict";
import type { Queryable } from "../../src/store/db.js";
import type { FakePaidProvider } from "../fakes/paid-provider.js";

/** A recipe whose calls were billed more than once, with what the ledger says of them. */
export interface RecipeBilling {
  recipeHash: string;
  billed: number;
  succeeded: number;
  inDoubt: number;
}

/** The fake provider's bill held against the provider-call ledger (DESIGN §6). */
export interface BillReconciliation {
  /** Generations the fake billed (each Idempotency-Key once). */
  billable: number;
  /** Keys the fake billed more than once (must be none). */
  billedAgain: string[];
  ledgerRows: number;
  succeeded: number;
  inDoubt: number;
  failed: number;
  /** Rows still pending or submitted after the run. */
  open: string[];
  /** Billed keys that are not a succeeded or in-doubt row: charges the ledger does not know. */
  unknownCharges: string[];
  /** Succeeded rows the fake never billed. */
  unbilledSuccesses: string[];
  /** Recipes billed more than once. */
  billedTwice: RecipeBilling[];
  /** Of those, the ones not explained by in-doubt calls (two successes, or too few in doubt). */
  paidTwiceWithoutDoubt: RecipeBilling[];
  summary: string;
}

/**
 * Reads the ledger and compares it with the fake's bill. The fake bills a generation once it
 * starts (a 429/5xx answer is not billed) and keys it by Idempotency-Key, which is the ledger
 * row's id; so every billed key must be a row that says "succeeded" or "in doubt".
 */
export async function reconcileBill(
  db: Queryable,
  fake: Pick<FakePaidProvider, "billedKeys">,
): Promise<BillReconciliation> {
  const calls = await db.query<{ id: string; recipe_hash: string; state: string }>(
    "select id, recipe_hash, state from provider_calls",
  );
  const billedKeys = fake.billedKeys();
  const billed = new Set(billedKeys);
  const seen = new Set<string>();
  const billedAgain = billedKeys.filter((key) => seen.has(key) || !seen.add(key));
  const stateOf = new Map(calls.map((call) => [call.id, call.state]));
  const count = (state: string) => calls.filter((call) => call.state === state).length;
  const perRecipe = new Map<string, RecipeBilling>();
  for (const call of calls) {
    const entry = perRecipe.get(call.recipe_hash) ?? {
      recipeHash: call.recipe_hash,
      billed: 0,
      succeeded: 0,
      inDoubt: 0,
    };
    if (billed.has(call.id)) entry.billed++;
    if (call.state === "succeeded") entry.succeeded++;
    if (call.state === "in_doubt") entry.inDoubt++;
    perRecipe.set(call.recipe_hash, entry);
  }
  const billedTwice = [...perRecipe.values()].filter((entry) => entry.billed > 1);
  const result: Omit<BillReconciliation, "summary"> = {
    billable: billedKeys.length,
    billedAgain,
    ledgerRows: calls.length,
    succeeded: count("succeeded"),
    inDoubt: count("in_doubt"),
    failed: count("failed"),
    open: calls
      .filter((call) => call.state === "pending" || call.state === "submitted")
      .map((call) => call.id),
    unknownCharges: billedKeys.filter((key) => {
      const state = stateOf.get(key);
      return state !== "succeeded" && state !== "in_doubt";
    }),
    unbilledSuccesses: calls
      .filter((call) => call.state === "succeeded" && !billed.has(call.id))
      .map((call) => call.id),
    billedTwice,
    // Every billing beyond the first must be matched by an in-doubt call of that recipe.
    paidTwiceWithoutDoubt: billedTwice.filter(
      (entry) => entry.succeeded > 1 || entry.billed - 1 > entry.inDoubt,
    ),
  };
  return {
    ...result,
    summary: `${result.billable} billable at the fake; ledger ${result.ledgerRows} rows: ${result.succeeded} succeeded + ${result.inDoubt} in doubt = ${result.succeeded + result.inDoubt}, ${result.failed} failed, ${result.open.length} open; ${billedTwice.length} recipes billed twice`,
  };
}

/** No charge the ledger does not know, and no recipe paid twice except through an in-doubt call. */
export function assertBillReconciles(bill: BillReconciliation): void {
  assert.deepEqual(bill.billedAgain, [], "the fake bills a key at most once");
  assert.deepEqual(bill.unknownCharges, [], "every charge is a succeeded or in-doubt ledger row");
  assert.deepEqual(bill.unbilledSuccesses, [], "every succeeded ledger row was billed");
  assert.ok(bill.billable <= bill.succeeded + bill.inDoubt, "billable ≤ succeeded + in doubt");
  assert.deepEqual(bill.paidTwiceWithoutDoubt, [], "a recipe billed twice has an in-doubt call");
  assert.deepEqual(bill.open, [], "no ledger row is left pending or submitted");
}
