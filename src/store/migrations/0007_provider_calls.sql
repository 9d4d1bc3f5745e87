-- Shotlist schema 7: the provider-call ledger (DESIGN §6) and the fallback reasons of attempts.
-- A row is committed before every paid call (autocommit, outside the job's transaction), so a
-- worker that dies mid-call leaves a record: nothing is paid that the ledger does not know.

create table provider_calls (
  -- Sent as the provider's Idempotency-Key: a retry of the same row is never billed twice.
  id                    text primary key,
  recipe_hash           text not null references recipes (hash),
  provider              text not null,
  model                 text not null,
  -- 1 for the first call of this recipe on this provider, 2 for the next, …
  attempt               integer not null,
  job_id                bigint references jobs (id) on delete set null,
  -- pending: committed, call under way (sync) or submit not yet answered (async);
  -- submitted: async, external_id known, being polled; succeeded: answered and billed;
  -- failed: answered with an error, not billed; in_doubt: outcome unknown, counted as spent.
  state                 text not null default 'pending'
                        check (state in ('pending', 'submitted', 'succeeded', 'failed', 'in_doubt')),
  external_id           text,
  estimated_cost_micros bigint not null,
  -- What the call cost: set when succeeded; in-doubt spend is the estimate.
  cost_micros           bigint,
  -- The output, kept in the blob store (provider outputs expire): a retry reuses it.
  output_sha256         text,
  output_ext            text,
  error                 text,
  -- Past this, a pending call's caller has given up or died: the row is in doubt.
  deadline_at           timestamptz not null,
  created_at            timestamptz not null default now(),
  finished_at           timestamptz
);
-- One open call per recipe at a time: two workers racing on a recipe cannot both pay for it.
create unique index provider_calls_open on provider_calls (recipe_hash)
  where state in ('pending', 'submitted');
create index provider_calls_recipe on provider_calls (recipe_hash, created_at);
create index provider_calls_day on provider_calls (provider, created_at);

-- Every link attempt says why it moved on (issue 3 §5).
alter table job_attempts drop constraint job_attempts_outcome_check;
alter table job_attempts add constraint job_attempts_outcome_check
  check (outcome in ('succeeded', 'check_failed', 'error', 'cannot_make', 'lease_expired',
                     'timeout', 'budget', 'circuit_open', 'rate_limited', 'deferred'));
