-- Shotlist schema 8: the review queue (DESIGN §1 "fallback chain": its last link is a human).
-- A review item is one product slot's stay in needs_review; every human decision on it is a row
-- of review_decisions (who, what, why, when): the audit trail. Assets say who made them.

create table review_items (
  id          bigint generated always as identity primary key,
  -- No foreign key to products: its check would take a key-share lock on the product row from
  -- inside the slot trigger below (slot, then product), the reverse of the intake's order
  -- (product, then slots), and deadlock with a re-submission. Products are never deleted.
  product_sku text not null,
  slot        text not null,
  -- The slot's recipe (its chain's first link) when it went to review.
  recipe_hash text not null references recipes (hash),
  reason      text,
  -- open: waiting for a human. rejected: its candidates were refused and nothing was requeued;
  -- the slot is still in review (an upload or a requeue can still settle it).
  -- approved / requeued / replaced (a human image): settled by a decision.
  -- closed: the slot left review without a decision (a new recipe, a publish).
  status      text not null default 'open'
              check (status in ('open', 'rejected', 'approved', 'requeued', 'replaced', 'closed')),
  opened_at   timestamptz not null default now(),
  closed_at   timestamptz
);
-- At most one live item per slot.
create unique index review_items_live on review_items (product_sku, slot)
  where status in ('open', 'rejected');
create index review_items_status on review_items (status, id);
-- Every item of a slot (a slot's history, e.g. the jobs requeued for it).
create index review_items_slot on review_items (product_sku, slot);

create table review_decisions (
  id          bigint generated always as identity primary key,
  item_id     bigint not null references review_items (id) on delete cascade,
  decision    text not null check (decision in ('approved', 'rejected', 'requeued', 'uploaded')),
  reason      text,
  -- approved: the candidate published; uploaded: the human image published.
  asset_id    bigint references assets (id),
  -- requeued: the render job that starts the chain again at `provider`(:`model`).
  job_id      bigint references jobs (id),
  provider    text,
  model       text,
  -- The API key that decided (kept when the key is revoked: revocation keeps the row).
  api_key_id  bigint references api_keys (id),
  decided_at  timestamptz not null default now()
);
create index review_decisions_item on review_decisions (item_id, id);
create index review_decisions_asset on review_decisions (asset_id) where asset_id is not null;

-- DESIGN §8: provenance says who made the bytes. A provider's output keeps its recipe as
-- before; a human-made image is published on the slot's recipe with made_by = 'human'.
alter table assets add column made_by text not null default 'provider'
  check (made_by in ('provider', 'human'));

-- Every way a slot enters or leaves needs_review opens or closes its item here, in the same
-- transaction: a render giving up, the intake taking over a finished job's outcome, and any
-- path added later. A trigger, not a call in each path, because missing one path would leave
-- a slot in review that no reviewer can see.
create function review_items_follow_slot() returns trigger language plpgsql as $$
begin
  if new.state = 'needs_review' then
    update review_items set status = 'closed', closed_at = now()
      where product_sku = new.product_sku and slot = new.slot
        and status in ('open', 'rejected') and recipe_hash <> new.recipe_hash;
    insert into review_items (product_sku, slot, recipe_hash, reason)
      values (new.product_sku, new.slot, new.recipe_hash, new.reason)
      on conflict (product_sku, slot) where status in ('open', 'rejected') do nothing;
  else
    -- A decision sets its item's status before it changes the slot, so only items that no
    -- decision settled are closed here.
    update review_items set status = 'closed', closed_at = now()
      where product_sku = new.product_sku and slot = new.slot and status in ('open', 'rejected');
  end if;
  return null;
end
$$;

create trigger product_slots_review after update of state, recipe_hash on product_slots
  for each row
  when (old.state is distinct from new.state or old.recipe_hash is distinct from new.recipe_hash)
  execute function review_items_follow_slot();

-- Slots already in review when this migration runs get their items.
insert into review_items (product_sku, slot, recipe_hash, reason, opened_at)
  select product_sku, slot, recipe_hash, reason, updated_at
  from product_slots where state = 'needs_review';
