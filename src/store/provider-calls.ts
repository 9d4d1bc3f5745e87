import { randomUUID } from "node:crypto";
import type { Db, Queryable } from "./db.js";

/**
 * The provider-call ledger (DESIGN §6): one row per paid call, committed before the call.
 *
 * pending → submitted (async: external id known) → succeeded | failed
 * pending → in_doubt (the caller timed out or died: outcome unknown, counted as spent)
 * in_doubt → succeeded | failed (a late caller learned the outcome after all)
 */
export type ProviderCallState = "pending" | "submitted" | "succeeded" | "failed" | "in_doubt";

export interface ProviderCallRow {
  id: string;
  recipe_hash: string;
  provider: string;
  model: string;
  attempt: number;
  job_id: number | null;
  state: ProviderCallState;
  external_id: string | null;
  estimated_cost_micros: number;
  cost_micros: number | null;
  output_sha256: string | null;
  output_ext: string | null;
  error: string | null;
  deadline_at: Date;
  created_at: Date;
  finished_at: Date | null;
}

export interface OpenCallInput {
  recipeHash: string;
  provider: string;
  model: string;
  jobId: number | null;
  estimatedCostMicros: number;
  /** How long the caller may hold the row pending before others may declare it in doubt. */
  holdMs: number;
  /** The provider's spend cap for the current UTC day; null = none. */
  dailyBudgetMicros: number | null;
}

export type OpenCallResult =
  | { kind: "opened"; call: ProviderCallRow }
  /** Another call of this recipe is open (a racing worker, or one to resume). */
  | { kind: "open_exists"; call: ProviderCallRow }
  /** The call would take today's spend past the cap. */
  | { kind: "budget"; spentMicros: number; budgetMicros: number };

// Both engines: a 32-bit key from the provider name serialises budget checks per provider.
const BUDGET_LOCK_SQL = "select pg_advisory_xact_lock(hashtext('provider_calls:' || $1))";

/** Today's spend as the budget sees it: succeeded at cost, in-doubt and open calls at estimate. */
const SPENT_TODAY_SQL = `select coalesce(sum(case
    when state = 'succeeded' then coalesce(cost_micros, estimated_cost_micros)
    when state in ('in_doubt', 'pending', 'submitted') then estimated_cost_micros
    else 0 end), 0)::bigint as spent
  from provider_calls
  where provider = $1 and created_at >= date_trunc('day', now() at time zone 'utc') at time zone 'utc'`;

/**
 * Opens a ledger row in its own committed transaction, before the call is made. Under a
 * per-provider advisory lock, so two workers cannot both pass the budget check with the last
 * euro; the unique index on open rows per recipe stops two workers paying for one recipe.
 */
export async function openCall(db: Db, input: OpenCallInput): Promise<OpenCallResult> {
  return db.transaction(async (tx) => {
    await tx.query(BUDGET_LOCK_SQL, [input.provider]);
    const [open] = await tx.query<ProviderCallRow>(
      `select * from provider_calls where recipe_hash = $1 and state in ('pending', 'submitted')`,
      [input.recipeHash],
    );
    if (open) return { kind: "open_exists", call: open };
    if (input.dailyBudgetMicros !== null) {
      const [row] = await tx.query<{ spent: number }>(SPENT_TODAY_SQL, [input.provider]);
      const spentMicros = Number(row?.spent ?? 0);
      if (spentMicros + input.estimatedCostMicros > input.dailyBudgetMicros) {
        return { kind: "budget", spentMicros, budgetMicros: input.dailyBudgetMicros };
      }
    }
    const [call] = await tx.query<ProviderCallRow>(
      `insert into provider_calls
         (id, recipe_hash, provider, model, attempt, job_id, estimated_cost_micros, deadline_at)
       values ($1, $2, $3, $4,
         (select count(*) + 1 from provider_calls where recipe_hash = $2),
         $5, $6, now() + $7::integer * interval '1 millisecond')
       returning *`,
      [
        randomUUID(),
        input.recipeHash,
        input.provider,
        input.model,
        input.jobId,
        input.estimatedCostMicros,
        Math.round(input.holdMs),
      ],
    );
    if (!call) throw new Error("insert into provider_calls returned no row");
    return { kind: "opened", call };
  });
}

/** The async provider's id, stored the moment submit returns: a retry resumes polling. */
export async function markSubmitted(db: Queryable, id: string, externalId: string): Promise<void> {
  await db.query(
    `update provider_calls set state = 'submitted', external_id = $2
     where id = $1 and state in ('pending', 'in_doubt')`,
    [id, externalId],
  );
}

export type CallEnding =
  | {
      state: "succeeded";
      costMicros: number;
      outputSha256: string | null;
      outputExt: string | null;
      error?: string;
    }
  | { state: "failed"; error: string }
  | { state: "in_doubt"; error: string };

/**
 * Records how a call ended. A row already in doubt may still learn its real outcome (a late
 * answer), but never goes back to in_doubt from a known one. Returns false when nothing changed.
 */
export async function finishCall(db: Queryable, id: string, ending: CallEnding): Promise<boolean> {
  const from =
    ending.state === "in_doubt" ? ["pending", "submitted"] : ["pending", "submitted", "in_doubt"];
  const rows = await db.query(
    `update provider_calls set state = $2, cost_micros = $3, output_sha256 = $4, output_ext = $5,
       error = $6, finished_at = now()
     where id = $1 and state = any($7::text[]) returning id`,
    [
      id,
      ending.state,
      ending.state === "succeeded" ? ending.costMicros : null,
      ending.state === "succeeded" ? ending.outputSha256 : null,
      ending.state === "succeeded" ? ending.outputExt : null,
      ending.error ?? null,
      from,
    ],
  );
  return rows.length > 0;
}

/**
 * Pending rows of this recipe whose holder's deadline passed (its worker died, or hung past its
 * timeout): their outcome is unknown, so they become in_doubt and count as spent.
 */
export async function expirePendingCalls(
  db: Queryable,
  recipeHash: string,
): Promise<ProviderCallRow[]> {
  return db.query<ProviderCallRow>(
    `update provider_calls set state = 'in_doubt', finished_at = now(),
       error = coalesce(error, 'outcome unknown: the caller stopped before the provider answered')
     where recipe_hash = $1 and state = 'pending' and deadline_at < now() returning *`,
    [recipeHash],
  );
}

/** The newest succeeded call of a recipe: its output is reused instead of paying again. */
export async function findSucceededCall(
  db: Queryable,
  recipeHash: string,
): Promise<ProviderCallRow | undefined> {
  const [row] = await db.query<ProviderCallRow>(
    `select * from provider_calls where recipe_hash = $1 and state = 'succeeded'
     order by created_at desc limit 1`,
    [recipeHash],
  );
  return row;
}

/**
 * What a new attempt at a recipe looks at first, in one query: the newest succeeded call (its
 * output is reused) and the calls not yet settled (pending, submitted, in doubt), whose
 * receipts in the blob store may show that they succeeded after all.
 */
export async function findReusableCalls(
  db: Queryable,
  recipeHash: string,
): Promise<{ succeeded: ProviderCallRow | undefined; unsettled: ProviderCallRow[] }> {
  const rows = await db.query<ProviderCallRow>(
    `select * from provider_calls
     where recipe_hash = $1 and state in ('succeeded', 'pending', 'submitted', 'in_doubt')
     order by created_at desc`,
    [recipeHash],
  );
  return {
    succeeded: rows.find((row) => row.state === "succeeded"),
    unsettled: rows.filter((row) => row.state !== "succeeded"),
  };
}

/** A job's calls still pending: when the job ends, nobody is left to learn their outcome. */
export async function pendingCallsOfJob(db: Queryable, jobId: number): Promise<ProviderCallRow[]> {
  return db.query<ProviderCallRow>(
    "select * from provider_calls where job_id = $1 and state = 'pending' order by created_at",
    [jobId],
  );
}

export async function listCalls(db: Queryable, recipeHash: string): Promise<ProviderCallRow[]> {
  return db.query<ProviderCallRow>(
    "select * from provider_calls where recipe_hash = $1 order by attempt",
    [recipeHash],
  );
}

/**
 * Ids of a provider's calls in the given states: what a reconciliation with the provider's
 * invoice (or a fake's billed Idempotency-Keys) compares against. Every billed key must be a
 * `succeeded` or `in_doubt` row; every `succeeded` row must be billed.
 */
export async function callIdsByState(
  db: Queryable,
  provider: string,
  states: readonly ProviderCallState[],
): Promise<string[]> {
  const rows = await db.query<{ id: string }>(
    "select id from provider_calls where provider = $1 and state = any($2::text[]) order by created_at",
    [provider, states],
  );
  return rows.map((row) => row.id);
}

/** Milliseconds until the next UTC midnight, when the daily budget starts again. */
export function msUntilNextUtcDay(now: Date = new Date()): number {
  const next = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1);
  return next - now.getTime();
}

export interface CostLine {
  provider: string;
  model: string;
  calls: number;
  succeeded: number;
  failed: number;
  /** Calls still open: submitted, or pending within their holder's deadline. */
  open: number;
  /** What succeeded calls cost. */
  spentMicros: number;
  /** In-doubt calls, and pending ones past their holder's deadline (in doubt by definition). */
  inDoubt: number;
  /** In-doubt calls at their estimate: possibly charged, counted as spent. */
  inDoubtMicros: number;
}

export interface CostReport {
  since: string | null;
  lines: CostLine[];
  total: Omit<CostLine, "provider" | "model">;
}

/**
 * A pending row past its deadline is in doubt by definition (its holder gave up or died), even
 * before a later attempt or the end of its job marks it so: the report counts it as spent.
 */
const IN_DOUBT_SQL = "state = 'in_doubt' or (state = 'pending' and deadline_at < now())";
const OPEN_SQL = "state = 'submitted' or (state = 'pending' and deadline_at >= now())";

/** Spend by provider and model since a moment (all time when null), in-doubt spend apart. */
export async function costReport(db: Queryable, since: Date | null): Promise<CostReport> {
  const rows = await db.query<CostLine>(
    `select provider, model,
       count(*)::integer as calls,
       count(*) filter (where state = 'succeeded')::integer as succeeded,
       count(*) filter (where state = 'failed')::integer as failed,
       count(*) filter (where ${OPEN_SQL})::integer as open,
       coalesce(sum(cost_micros) filter (where state = 'succeeded'), 0)::bigint as "spentMicros",
       count(*) filter (where ${IN_DOUBT_SQL})::integer as "inDoubt",
       coalesce(sum(estimated_cost_micros) filter (where ${IN_DOUBT_SQL}), 0)::bigint as "inDoubtMicros"
     from provider_calls
     where $1::timestamptz is null or created_at >= $1::timestamptz
     group by provider, model order by provider, model`,
    [since],
  );
  const total = {
    calls: 0,
    succeeded: 0,
    failed: 0,
    open: 0,
    spentMicros: 0,
    inDoubt: 0,
    inDoubtMicros: 0,
  };
  const lines = rows.map((row) => {
    const line: CostLine = {
      ...row,
      spentMicros: Number(row.spentMicros),
      inDoubtMicros: Number(row.inDoubtMicros),
    };
    for (const key of Object.keys(total) as (keyof typeof total)[]) total[key] += line[key];
    return line;
  });
  return { since: since?.toISOString() ?? null, lines, total };
}
