-- Shotlist schema 3: inbound webhook deliveries already acted on (DESIGN §2). A delivery's
-- receipt is written in the same transaction as the product and its jobs, so a retried
-- delivery (Shopify retries for 48 h; Standard Webhooks senders too) is recognised for good.

create table webhook_receipts (
  -- 'shopify' or 'intake': the two doors have separate id spaces.
  source      text not null,
  -- X-Shopify-Event-Id (else X-Shopify-Webhook-Id), or the Standard Webhooks webhook-id.
  delivery_id text not null,
  topic       text not null,
  sku         text not null,
  received_at timestamptz not null default now(),
  primary key (source, delivery_id)
);
