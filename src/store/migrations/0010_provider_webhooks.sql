-- Shotlist schema 10: callbacks from async providers (Replicate, fal) into the ledger.
-- A callback is a wake-up, not an outcome: the worker polling the call reads the provider's own
-- answer and the ledger stays the single writer of outcomes. Every verified callback is kept
-- here, known or not, so a replay is answered from its first record and an unknown prediction
-- leaves a trace.

create table provider_webhooks (
  provider     text not null,
  -- The delivery's id (Replicate `webhook-id`; fal: request id + timestamp): replays share it.
  delivery_id  text not null,
  -- The provider's own id of the call (a prediction id, a fal request id).
  provider_id  text not null,
  -- The ledger row it woke; null when no row knows the provider id (answered 404).
  call_id      text references provider_calls (id) on delete set null,
  status       text not null,
  received_at  timestamptz not null default now(),
  primary key (provider, delivery_id)
);

-- Callbacks name only the provider's id, which opens the ledger row's external id.
create index provider_calls_provider_id on provider_calls (provider, (split_part(external_id, '|', 1)));
