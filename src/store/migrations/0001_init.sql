-- Shotlist schema 1: products and their references, recipes, assets, the job queue.
-- Runs unchanged on PGlite and PostgreSQL (STYLE §4).

create table products (
  sku         text primary key,
  title       text not null,
  category    text not null,
  attributes  jsonb not null default '{}',
  -- SHA-256 of the canonical product input: an identical re-submission is a no-op.
  input_hash  text not null,
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now()
);
create index products_category on products (category);

create table variants (
  product_sku text not null references products (sku) on delete cascade,
  sku         text not null,
  position    integer not null,
  attributes  jsonb not null default '{}',
  primary key (product_sku, sku)
);

create table reference_images (
  sha256      text primary key,
  width       integer not null,
  height      integer not null,
  format      text not null,
  byte_size   integer not null,
  created_at  timestamptz not null default now()
);

create table product_references (
  product_sku text not null references products (sku) on delete cascade,
  position    integer not null,
  sha256      text not null references reference_images (sha256),
  origin      text not null,
  primary key (product_sku, position)
);

create table recipes (
  hash        text primary key,
  recipe      jsonb not null,
  provider    text not null,
  model       text not null,
  slot        text not null,
  created_at  timestamptz not null default now()
);

create table assets (
  id          bigint generated always as identity primary key,
  sha256      text not null,
  ext         text not null,
  recipe_hash text not null references recipes (hash),
  link        integer not null,
  state       text not null check (state in ('published', 'in_review', 'rejected', 'superseded')),
  width       integer not null,
  height      integer not null,
  byte_size   integer not null,
  cost_micros bigint not null default 0,
  checks      jsonb not null default '[]',
  created_at  timestamptz not null default now(),
  unique (recipe_hash, sha256)
);
create index assets_sha256 on assets (sha256);

create table product_slots (
  product_sku text not null references products (sku) on delete cascade,
  slot        text not null,
  position    integer not null,
  required    boolean not null,
  alt         text not null,
  recipe_hash text not null references recipes (hash),
  state       text not null default 'pending'
              check (state in ('pending', 'published', 'needs_review', 'failed')),
  asset_id    bigint references assets (id),
  reason      text,
  updated_at  timestamptz not null default now(),
  primary key (product_sku, slot)
);
create index product_slots_recipe on product_slots (recipe_hash);
create index product_slots_state on product_slots (state);

create table jobs (
  id           bigint generated always as identity primary key,
  kind         text not null,
  -- The job key: "render:<recipe hash>". Submitting the same product twice adds no job.
  key          text not null unique,
  payload      jsonb not null,
  state        text not null default 'queued'
               check (state in ('queued', 'running', 'retrying', 'succeeded', 'failed', 'needs_review')),
  attempts     integer not null default 0,
  max_attempts integer not null,
  run_at       timestamptz not null default now(),
  locked_by    text,
  lease_until  timestamptz,
  last_error   text,
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now(),
  finished_at  timestamptz
);
create index jobs_ready on jobs (run_at, id) where state in ('queued', 'retrying');
create index jobs_leased on jobs (lease_until) where state = 'running';
create index jobs_state on jobs (state);

create table job_attempts (
  id          bigint generated always as identity primary key,
  job_id      bigint not null references jobs (id) on delete cascade,
  attempt     integer not null,
  worker      text not null,
  link        integer,
  provider    text,
  recipe_hash text,
  outcome     text not null
              check (outcome in ('succeeded', 'check_failed', 'error', 'cannot_make', 'lease_expired')),
  error       text,
  checks      jsonb,
  started_at  timestamptz not null,
  finished_at timestamptz not null default now()
);
create index job_attempts_job on job_attempts (job_id);
