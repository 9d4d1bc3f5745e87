-- Shotlist schema 6: outbound webhooks (DESIGN §4), signed per Standard Webhooks.
-- An event is written as one delivery per subscribed endpoint, in the same transaction as the
-- state change that caused it (transactional outbox); a `webhook-delivery` job sends it.

create table webhook_endpoints (
  id              bigint generated always as identity primary key,
  url             text not null,
  -- Event types this endpoint receives, e.g. {asset.published,product.complete}.
  events          text[] not null check (cardinality(events) > 0),
  -- whsec_<base64>: shown once at creation; needed in clear to sign every delivery.
  secret          text not null,
  created_at      timestamptz not null default now(),
  -- Set when the receiver answered 410 Gone: no further deliveries are attempted.
  disabled_at     timestamptz,
  disabled_reason text,
  -- DELETE keeps the row (and its delivery log) but hides it and stops its deliveries.
  deleted_at      timestamptz
);

create table webhook_deliveries (
  -- The Standard Webhooks msg id (`webhook-id` header): stable across retries and redeliveries.
  id              text primary key,
  -- Insertion order, for newest-first cursor pagination.
  seq             bigint generated always as identity unique,
  endpoint_id     bigint not null references webhook_endpoints (id),
  event_type      text not null,
  -- The body sent: {type, timestamp, data}.
  payload         jsonb not null,
  status          text not null default 'pending'
                  check (status in ('pending', 'succeeded', 'failed')),
  attempts        integer not null default 0,
  last_status_code integer,
  last_error      text,
  next_attempt_at timestamptz default now(),
  -- Start of the current retry cycle (creation, or the last manual redelivery): the last retry
  -- is held back until 24 h after it.
  cycle_started_at timestamptz not null default now(),
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now()
);
create index webhook_deliveries_endpoint on webhook_deliveries (endpoint_id, seq);
create index webhook_deliveries_event on webhook_deliveries (event_type, seq);
create index webhook_deliveries_status on webhook_deliveries (status, seq);

create table webhook_delivery_attempts (
  id           bigint generated always as identity primary key,
  delivery_id  text not null references webhook_deliveries (id) on delete cascade,
  -- The HTTP status the receiver answered; null when no answer came (timeout, refused, DNS).
  status_code  integer,
  error        text,
  duration_ms  integer not null,
  attempted_at timestamptz not null default now()
);
create index webhook_delivery_attempts_delivery on webhook_delivery_attempts (delivery_id, id);
