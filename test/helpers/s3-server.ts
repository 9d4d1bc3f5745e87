import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import S3rver from "s3rver";

/** Credentials s3rver knows by default. */
export const S3RVER_CREDENTIALS = { AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER" };

export interface S3Server {
  /** The server's URL, for AWS_ENDPOINT_URL. */
  endpoint: string;
  /** Environment that points the AWS SDK at it. */
  env: Record<string, string>;
  close(): Promise<void>;
}

/** s3rver (an S3-compatible server speaking the S3 REST API) on a free port, with `buckets`. */
export async function startS3Server(buckets: readonly string[]): Promise<S3Server> {
  const directory = mkdtempSync(join(tmpdir(), "shotlist-s3-"));
  const server = new S3rver({
    port: 0,
    address: "127.0.0.1",
    silent: true,
    directory,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    env: { AWS_ENDPOINT_URL: endpoint, AWS_REGION: "us-east-1", ...S3RVER_CREDENTIALS },
    async close() {
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
