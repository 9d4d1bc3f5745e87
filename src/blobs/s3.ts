import {
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3";
import type { BlobStore } from "./store.js";

/** Bucket names as S3 allows them (3–63 lowercase letters, digits, dots and hyphens). */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const CONTENT_TYPES: Readonly<Record<string, string>> = {
  jpg: "image/jpeg",
  webp: "image/webp",
  avif: "image/avif",
  png: "image/png",
  json: "application/json",
};

export interface S3Location {
  bucket: string;
  /** Key prefix without a trailing slash; "" for the bucket's root. */
  prefix: string;
}

/**
 * `s3://bucket/prefix` → bucket and prefix. Throws with what was expected for anything else (the
 * caller names the variable).
 */
export function parseS3Url(url: string): S3Location {
  const match = /^s3:\/\/([^/]*)\/?(.*)$/.exec(url);
  const bucket = match?.[1] ?? "";
  if (!BUCKET.test(bucket)) {
    throw new Error(
      `expected s3://bucket/prefix with a bucket name of 3–63 lowercase letters, digits, '.' and '-'; got ${JSON.stringify(url.slice(0, 80))}`,
    );
  }
  const prefix = (match?.[2] ?? "").replace(/\/+$/, "");
  if (
    prefix !== "" &&
    prefix.split("/").some((part) => part === "" || part === "." || part === "..")
  ) {
    throw new Error(
      `the prefix of ${JSON.stringify(url.slice(0, 80))} has an empty, '.' or '..' part`,
    );
  }
  return { bucket, prefix };
}

export interface S3BlobStoreOptions extends S3Location {
  /** An S3-compatible server's URL (AWS_ENDPOINT_URL); then path-style addressing is used. */
  endpoint?: string | undefined;
  region?: string | undefined;
  /** Else the SDK's default chain (environment, shared files, instance roles). */
  credentials?: { accessKeyId: string; secretAccessKey: string } | undefined;
}

/**
 * An S3 bucket (or an S3-compatible server) as the blob store (DESIGN §5, §11), through the
 * official AWS SDK v3. A PUT is atomic in S3 (a reader sees the whole object or none), which is
 * the store's contract; objects carry their content type, so a CDN may serve the bucket directly.
 */
export async function createS3BlobStore(options: S3BlobStoreOptions): Promise<BlobStore> {
  const client = new S3Client({
    region: options.region ?? "us-east-1",
    ...(options.endpoint ? { endpoint: options.endpoint, forcePathStyle: true } : {}),
    ...(options.credentials ? { credentials: options.credentials } : {}),
    // Checksums only where S3 requires them: S3-compatible servers do not all know the newer
    // CRC headers, and keys are content hashes checked by their readers anyway.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
  const { bucket, prefix } = options;
  // The bucket is looked at once, at start: a HEAD of a key cannot tell a missing key from a
  // missing bucket (both are a bare 404), so a misconfiguration would read as "nothing stored".
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch (error) {
    client.destroy();
    const status = error instanceof S3ServiceException ? error.$metadata.httpStatusCode : undefined;
    const why =
      status === 404
        ? "does not exist"
        : status === 403
          ? "refuses these credentials"
          : `cannot be reached (${error instanceof Error ? error.message || error.name : String(error)})`;
    throw new Error(`bucket ${bucket}${options.endpoint ? ` at ${options.endpoint}` : ""} ${why}`, {
      cause: error,
    });
  }
  const keyOf = (key: string) => (prefix ? `${prefix}/${key}` : key);
  const notFound = (error: unknown) =>
    error instanceof S3ServiceException &&
    (error.name === "NoSuchKey" ||
      error.name === "NotFound" ||
      error.$metadata.httpStatusCode === 404) &&
    error.name !== "NoSuchBucket";
  return {
    name: "s3",
    location: `s3://${bucket}${prefix ? `/${prefix}` : ""}${options.endpoint ? ` at ${options.endpoint}` : ""}`,
    async put(key, bytes) {
      const ext = key.slice(key.lastIndexOf(".") + 1);
      await client.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: keyOf(key),
          Body: bytes,
          ContentType: CONTENT_TYPES[ext] ?? "application/octet-stream",
        }),
      );
    },
    async get(key) {
      try {
        const object = await client.send(new GetObjectCommand({ Bucket: bucket, Key: keyOf(key) }));
        if (!object.Body) return undefined;
        return Buffer.from(await object.Body.transformToByteArray());
      } catch (error) {
        if (notFound(error)) return undefined;
        throw error;
      }
    },
    async has(key) {
      try {
        await client.send(new HeadObjectCommand({ Bucket: bucket, Key: keyOf(key) }));
        return true;
      } catch (error) {
        if (notFound(error)) return false;
        throw error;
      }
    },
  };
}
