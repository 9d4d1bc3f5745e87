-- Shotlist schema 5: the Shopify write-back record (DESIGN §4). Shopify's @idempotent directive
-- does not cover media mutations, so this table is what makes a write-back exactly-once: a row
-- is written before the media is attached and completed with Shopify's media id after, and a
-- retry never attaches the same (shop, product, slot, asset) twice.

create table shopify_media (
  shop        text not null,
  -- gid://shopify/Product/<id>
  product_gid text not null,
  slot        text not null,
  sha256      text not null,
  -- gid://shopify/MediaImage/<id>; null between "about to attach" and Shopify's answer.
  media_gid   text,
  status      text not null default 'attaching'
              check (status in ('attaching', 'uploaded', 'processing', 'ready', 'failed',
                                'removed', 'left_alone')),
  alt         text not null,
  position    integer not null,
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  primary key (shop, product_gid, slot, sha256)
);
create index shopify_media_media on shopify_media (media_gid);
