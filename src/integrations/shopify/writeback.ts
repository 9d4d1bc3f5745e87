import { sha256Hex } from "../../domain/canonical.js";
import { ShotlistError } from "../../domain/errors.js";
import type { JobContext, JobHandler, JobOutcome } from "../../queue/worker.js";
import type { Queryable } from "../../store/db.js";
import type { ClaimedJob } from "../../store/jobs.js";
import type { ShopifyGraphql, ShopifyTarget } from "./client.js";

export const SHOPIFY_WRITEBACK_KIND = "shopify-writeback";

export interface WritebackPayload {
  sku: string;
}

/**
 * Enqueues the write-back of each product in `skus` that came from Shopify and whose slots are
 * all settled (none pending, every required one published). The job key names the set of
 * published assets, so the same set is written back once and a changed set again.
 */
export async function enqueueShopifyWriteback(
  tx: Queryable,
  skus: readonly string[],
  maxAttempts: number,
): Promise<void> {
  for (const sku of new Set(skus)) {
    const rows = await tx.query<{
      shopify_id: string | null;
      state: string;
      required: boolean;
      sha256: string | null;
    }>(
      `select p.attributes->>'shopifyProductId' as shopify_id, ps.state, ps.required, a.sha256
       from products p join product_slots ps on ps.product_sku = p.sku
       left join assets a on a.id = ps.asset_id
       where p.sku = $1 order by ps.position`,
      [sku],
    );
    if (rows.length === 0 || !rows[0]?.shopify_id) continue;
    const settled = rows.every(
      (row) => row.state !== "pending" && (!row.required || row.state === "published"),
    );
    if (!settled) continue;
    const hashes = rows
      .filter((row) => row.state === "published" && row.sha256)
      .map((row) => row.sha256 as string);
    if (hashes.length === 0) continue;
    // Keyed by the set of images, so concurrent publishes of one final set make one job. A set
    // written before and since replaced (inputs A → B → A) has a finished job under this key:
    // run it again, or the shop would keep B's images. The job itself is idempotent.
    await tx.query(
      `insert into jobs (kind, key, payload, max_attempts) values ($1, $2, $3, $4)
       on conflict (key) do update set state = 'queued', run_at = now(), attempts = 0,
         last_error = null, finished_at = null, updated_at = now()
       where jobs.state in ('succeeded', 'failed', 'needs_review')`,
      [
        SHOPIFY_WRITEBACK_KIND,
        `${SHOPIFY_WRITEBACK_KIND}:${sku}:${sha256Hex(Buffer.from(hashes.join(","))).slice(0, 32)}`,
        JSON.stringify({ sku } satisfies WritebackPayload),
        maxAttempts,
      ],
    );
  }
}

export interface WritebackDeps {
  db: Queryable;
  target: ShopifyTarget;
  graphql: ShopifyGraphql;
  /** Base URL of /a/ asset URLs, which Shopify fetches as `originalSource`. */
  publicUrl: string;
  /** Media status poll interval; default 1 s. */
  pollMs?: number;
  /** Polls before the job is retried; default 120. */
  maxPolls?: number;
}

interface ShopifyMedia {
  id: string;
  alt: string | null;
  status: string;
  mediaContentType: string;
}

interface RecordRow {
  slot: string;
  sha256: string;
  media_gid: string | null;
  status: string;
  alt: string;
}

const PRODUCT_MEDIA_QUERY = `query ShotlistProductMedia($id: ID!) {
  product(id: $id) {
    id
    media(first: 250) {
      nodes { id alt status mediaContentType }
    }
  }
}`;

const ATTACH_MUTATION = `mutation ShotlistAttachMedia($product: ProductUpdateInput!, $media: [CreateMediaInput!]) {
  productUpdate(product: $product, media: $media) {
    product {
      id
      media(first: 250) {
        nodes { id alt status mediaContentType }
      }
    }
    userErrors { field message }
  }
}`;

const DELETE_MUTATION = `mutation ShotlistDeleteFiles($fileIds: [ID!]!) {
  fileDelete(fileIds: $fileIds) {
    deletedFileIds
    userErrors { field message code }
  }
}`;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * The `shopify-writeback` job: puts a product's published assets on its Shopify product, in
 * shot-list order, with the slot's alt text. Exactly-once through `shopify_media`: a row is
 * written before each attach and completed with the media id after; media Shotlist did not
 * make (or whose alt a merchant edited) is never touched.
 */
export function createShopifyWritebackHandler(deps: WritebackDeps): JobHandler {
  const shop = deps.target.shop;
  const pollMs = deps.pollMs ?? 1_000;
  const maxPolls = deps.maxPolls ?? 120;

  async function productMedia(productGid: string): Promise<ShopifyMedia[]> {
    const data = await deps.graphql.request<{
      product: { media: { nodes: ShopifyMedia[] } } | null;
    }>(PRODUCT_MEDIA_QUERY, { id: productGid });
    if (!data.product) {
      throw new ShotlistError("shopify_error", `Shopify product ${productGid} does not exist`, {
        status: 404,
      });
    }
    return data.product.media.nodes;
  }

  async function records(productGid: string): Promise<RecordRow[]> {
    return deps.db.query<RecordRow>(
      `select slot, sha256, media_gid, status, alt from shopify_media
       where shop = $1 and product_gid = $2 order by position, created_at`,
      [shop, productGid],
    );
  }

  async function setStatus(productGid: string, record: RecordRow, status: string) {
    await deps.db.query(
      `update shopify_media set status = $5, updated_at = now()
       where shop = $1 and product_gid = $2 and slot = $3 and sha256 = $4`,
      [shop, productGid, record.slot, record.sha256, status],
    );
  }

  return {
    async run(job: ClaimedJob, context: JobContext): Promise<JobOutcome> {
      const { sku } = job.payload as WritebackPayload;
      const [product] = await deps.db.query<{ shopify_id: string | null }>(
        "select attributes->>'shopifyProductId' as shopify_id from products where sku = $1",
        [sku],
      );
      if (!product?.shopify_id) {
        throw new ShotlistError("shopify_error", `product ${sku} did not come from Shopify`, {
          status: 422,
        });
      }
      const productGid = `gid://shopify/Product/${product.shopify_id}`;
      const slots = await deps.db.query<{
        slot: string;
        position: number;
        alt: string;
        sha256: string;
        ext: string;
      }>(
        `select ps.slot, ps.position, ps.alt, a.sha256, a.ext
         from product_slots ps join assets a on a.id = ps.asset_id
         where ps.product_sku = $1 and ps.state = 'published' order by ps.position`,
        [sku],
      );

      let media = await productMedia(productGid);
      const onShopify = () => new Map(media.map((item) => [item.id, item]));
      let known = await records(productGid);
      const recordOf = (slot: string, sha256: string) =>
        known.find((row) => row.slot === slot && row.sha256 === sha256);

      // 1. Attach what is missing, one media per call (the new id is the one not there before).
      for (const slot of slots) {
        if (context.signal.aborted) throw new Error("write-back aborted");
        const record = recordOf(slot.slot, slot.sha256);
        const present = onShopify();
        if (record?.media_gid && present.has(record.media_gid) && record.status !== "failed") {
          continue;
        }
        if (record && !record.media_gid && record.status === "attaching") {
          // A previous attempt stopped between Shopify's answer and our record: adopt an
          // image with our alt that no record claims, rather than attaching a second copy.
          const claimed = new Set(known.map((row) => row.media_gid).filter(Boolean));
          const orphan = media.find(
            (item) =>
              !claimed.has(item.id) && item.alt === slot.alt && item.mediaContentType === "IMAGE",
          );
          if (orphan) {
            await deps.db.query(
              `update shopify_media set media_gid = $5, status = $6, updated_at = now()
               where shop = $1 and product_gid = $2 and slot = $3 and sha256 = $4`,
              [shop, productGid, slot.slot, slot.sha256, orphan.id, orphan.status.toLowerCase()],
            );
            known = await records(productGid);
            continue;
          }
        }
        // Before the call: the record that says "this asset is being attached here".
        await deps.db.query(
          `insert into shopify_media (shop, product_gid, slot, sha256, alt, position, status)
           values ($1, $2, $3, $4, $5, $6, 'attaching')
           on conflict (shop, product_gid, slot, sha256) do update
             set status = 'attaching', media_gid = null, alt = excluded.alt,
                 position = excluded.position, updated_at = now()`,
          [shop, productGid, slot.slot, slot.sha256, slot.alt, slot.position],
        );
        const before = new Set(media.map((item) => item.id));
        const data = await deps.graphql.request<{
          productUpdate: {
            product: { media: { nodes: ShopifyMedia[] } } | null;
            userErrors: { field: string[] | null; message: string }[];
          };
        }>(ATTACH_MUTATION, {
          product: { id: productGid },
          media: [
            {
              originalSource: `${deps.publicUrl}/a/${slot.sha256}.${slot.ext}`,
              alt: slot.alt,
              mediaContentType: "IMAGE",
            },
          ],
        });
        const { userErrors, product: updated } = data.productUpdate;
        if (userErrors.length > 0 || !updated) {
          throw new ShotlistError(
            "shopify_error",
            `productUpdate refused the media of ${sku} ${slot.slot}: ${userErrors.map((error) => error.message).join("; ")}`,
            { status: 502 },
          );
        }
        media = updated.media.nodes;
        const added = media.find((item) => !before.has(item.id));
        if (!added) {
          throw new ShotlistError(
            "shopify_error",
            `productUpdate returned no new media for ${sku} ${slot.slot}`,
            { status: 502, retryable: true },
          );
        }
        // After the call: the media id, so no retry attaches this asset again.
        await deps.db.query(
          `update shopify_media set media_gid = $5, status = $6, updated_at = now()
           where shop = $1 and product_gid = $2 and slot = $3 and sha256 = $4`,
          [shop, productGid, slot.slot, slot.sha256, added.id, added.status.toLowerCase()],
        );
        known = await records(productGid);
        context.log.info({ sku, slot: slot.slot, media: added.id }, "attached media on Shopify");
      }

      // 2. Remove Shotlist-made media of a slot that a newer asset replaced — unless a
      // merchant edited it (its alt is no longer ours), which is left alone.
      const current = new Set(slots.map((slot) => `${slot.slot}\u0000${slot.sha256}`));
      const present = onShopify();
      const stale = known.filter(
        (row) =>
          !current.has(`${row.slot}\u0000${row.sha256}`) &&
          row.status !== "removed" &&
          row.status !== "left_alone",
      );
      const toDelete: RecordRow[] = [];
      for (const row of stale) {
        const item = row.media_gid ? present.get(row.media_gid) : undefined;
        if (!item) await setStatus(productGid, row, "removed");
        else if (item.alt !== row.alt) await setStatus(productGid, row, "left_alone");
        else toDelete.push(row);
      }
      if (toDelete.length > 0) {
        const data = await deps.graphql.request<{
          fileDelete: { deletedFileIds: string[] | null; userErrors: { message: string }[] };
        }>(DELETE_MUTATION, { fileIds: toDelete.map((row) => row.media_gid) });
        if (data.fileDelete.userErrors.length > 0) {
          throw new ShotlistError(
            "shopify_error",
            `fileDelete: ${data.fileDelete.userErrors.map((error) => error.message).join("; ")}`,
            { status: 502, retryable: true },
          );
        }
        for (const row of toDelete) await setStatus(productGid, row, "removed");
      }

      // 3. Poll until every attached media is READY; a FAILED one is deleted and recorded as
      // failed, and the job retries (bounded by its attempts), which attaches it again.
      for (let poll = 0; ; poll++) {
        const mine = await deps.db.query<RecordRow>(
          `select slot, sha256, media_gid, status, alt from shopify_media
           where shop = $1 and product_gid = $2 and media_gid is not null
             and status in ('uploaded', 'processing', 'ready')`,
          [shop, productGid],
        );
        const byId = onShopify();
        let pending = 0;
        for (const row of mine) {
          const item = row.media_gid ? byId.get(row.media_gid) : undefined;
          if (!item) continue;
          const status = item.status.toLowerCase();
          if (status === "failed") {
            await deps.graphql.request(DELETE_MUTATION, { fileIds: [item.id] });
            await setStatus(productGid, row, "failed");
            throw new ShotlistError(
              "shopify_error",
              `Shopify could not process the media of ${sku} ${row.slot}; attaching it again`,
              { status: 502, retryable: true },
            );
          }
          if (status !== row.status) await setStatus(productGid, row, status);
          if (status !== "ready") pending++;
        }
        if (pending === 0) break;
        if (poll >= maxPolls) {
          throw new ShotlistError("shopify_error", `media of ${sku} not READY yet`, {
            status: 504,
            retryable: true,
          });
        }
        await sleep(pollMs);
        media = await productMedia(productGid);
      }
      return { state: "succeeded", attempts: [] };
    },
    async onNeedsReview() {},
  };
}
