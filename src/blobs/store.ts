/**
 * Content-addressed blob storage. Keys are derived from SHA-256 hashes, so a key's bytes never
 * change: writing the same key twice is harmless, and readers may cache forever.
 */
export interface BlobStore {
  /** Stable identifier, e.g. "fs". */
  readonly name: string;
  /** Where the blobs live, for people (a folder path or a bucket URL). */
  readonly location: string;
  /** Writes atomically: a reader sees the whole blob or none. */
  put(key: string, bytes: Buffer): Promise<void>;
  /** The bytes, or undefined when the key does not exist. */
  get(key: string): Promise<Buffer | undefined>;
  has(key: string): Promise<boolean>;
}

/** `assets/ab/<sha256>.<ext>`: two-character fan-out keeps folders small at catalogue scale. */
export function assetKey(sha256: string, ext: string): string {
  return `assets/${sha256.slice(0, 2)}/${sha256}.${ext}`;
}

/** Reference photos as received, by content hash. */
export function referenceKey(sha256: string): string {
  return `references/${sha256.slice(0, 2)}/${sha256}`;
}

/**
 * A paid call's receipt, written once the output's bytes are stored and before its ledger row
 * is closed: it outlives a database outage or a dead worker, so a retry adopts the stored
 * output instead of paying again. The key is the call's id (a UUID, written once).
 */
export function callReceiptKey(callId: string): string {
  return `calls/${callId.slice(0, 2)}/${callId}.json`;
}
