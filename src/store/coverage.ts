import type { Queryable } from "./db.js";

export interface CatalogueCoverage {
  products: number;
  completeProducts: number;
  requiredSlots: number;
  publishedSlots: number;
  /** Required slots published / required slots. */
  slotCoverage: number;
  /** Products whose every required slot is published / products (the north star). */
  productCoverage: number;
  bySlot: {
    slot: string;
    required: number;
    published: number;
    needsReview: number;
    pending: number;
    failed: number;
  }[];
  byState: Record<string, number>;
}

export async function catalogueCoverage(db: Queryable): Promise<CatalogueCoverage> {
  const [totals] = await db.query<{
    products: number;
    complete_products: number;
    required_slots: number;
    published_slots: number;
  }>(
    `select count(*)::integer as products,
       count(*) filter (where required = published)::integer as complete_products,
       coalesce(sum(required), 0)::integer as required_slots,
       coalesce(sum(published), 0)::integer as published_slots
     from (
       select p.sku,
         count(ps.slot) filter (where ps.required) as required,
         count(ps.slot) filter (where ps.required and ps.state = 'published') as published
       from products p left join product_slots ps on ps.product_sku = p.sku
       group by p.sku
     ) per_product`,
  );
  const bySlot = await db.query<CatalogueCoverage["bySlot"][number]>(
    `select slot,
       count(*) filter (where required)::integer as required,
       count(*) filter (where state = 'published')::integer as published,
       count(*) filter (where state = 'needs_review')::integer as "needsReview",
       count(*) filter (where state = 'pending')::integer as pending,
       count(*) filter (where state = 'failed')::integer as failed
     from product_slots group by slot order by min(position), slot`,
  );
  const states = await db.query<{ state: string; count: number }>(
    "select state, count(*)::integer as count from product_slots group by state",
  );
  const products = totals?.products ?? 0;
  const requiredSlots = totals?.required_slots ?? 0;
  return {
    products,
    completeProducts: totals?.complete_products ?? 0,
    requiredSlots,
    publishedSlots: totals?.published_slots ?? 0,
    slotCoverage: requiredSlots === 0 ? 1 : (totals?.published_slots ?? 0) / requiredSlots,
    productCoverage: products === 0 ? 1 : (totals?.complete_products ?? 0) / products,
    bySlot,
    byState: Object.fromEntries(states.map((row) => [row.state, row.count])),
  };
}
