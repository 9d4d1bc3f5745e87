-- Shotlist schema 9: cross-process single flight for on-demand work (issue 6).
-- A process about to make a missing rendition first claims its key here; every other process
-- of the fleet that wants the same key sees the claim and waits for the bytes to appear in the
-- blob store instead of making them again. A claim row (rather than an advisory lock) holds no
-- connection while the work runs and behaves the same on PGlite, whose one connection would
-- make every advisory lock re-entrant. `expires_at` lets another process take over the work
-- of a process that died holding a claim.

create table flight_claims (
  -- What is being made, e.g. "rendition:renditions/ab/<hash>.webp".
  key         text primary key,
  -- Which process holds it (a random id per process), so only the holder releases it.
  owner       text not null,
  claimed_at  timestamptz not null default now(),
  expires_at  timestamptz not null
);
