-- Shotlist schema 2: API keys (stored hashed) and Idempotency-Key records (DESIGN §3).

create table api_keys (
  id          bigint generated always as identity primary key,
  name        text not null,
  -- SHA-256 (hex) of the key: the key is 256 random bits, so a fast hash cannot be brute-forced
  -- and a lookup stays one index hit; the key itself is shown once and never stored.
  key_hash    text not null unique,
  -- The first characters of the key, enough for an operator to tell keys apart in `keys list`.
  prefix      text not null,
  scopes      text[] not null check (scopes <@ array['read', 'write', 'admin']::text[]),
  created_at  timestamptz not null default now(),
  revoked_at  timestamptz
);

create table idempotency_keys (
  api_key_id   bigint not null references api_keys (id) on delete cascade,
  key          text not null,
  -- SHA-256 of the method, path and canonical JSON body: same key + other body → 422.
  request_hash text not null,
  -- 'started' rows are the in-flight lock (committed before the work); 'finished' rows replay.
  state        text not null check (state in ('started', 'finished')),
  status       integer,
  content_type text,
  body         text,
  created_at   timestamptz not null default now(),
  expires_at   timestamptz not null,
  primary key (api_key_id, key)
);
create index idempotency_keys_expires_at on idempotency_keys (expires_at);
