-- Shotlist schema 11: provenance (issue 5 §3, §5). The provider's own id of the call that made
-- an asset (sync calls have no ledger external id, so the asset keeps it), and assets made from
-- a stock template (the `template` chain link) say so.
alter table assets add column provider_request_id text;
alter table assets drop constraint assets_made_by_check;
alter table assets add constraint assets_made_by_check
  check (made_by in ('provider', 'human', 'template'));
