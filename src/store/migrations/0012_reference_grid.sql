-- Shotlist schema 12: each reference photo's grid of mean luminances (32 × 32 float4, 4,096
-- bytes, row by row), measured once at intake from the decode that validates the photo. The
-- notInput check compares an output with it instead of decoding the photo again in every job.
-- References saved before this migration have none; their check decodes the photo as before.
alter table reference_images add column luminance_grid bytea;
