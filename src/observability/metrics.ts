import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { catalogueCoverage } from "../store/coverage.js";
import type { Queryable } from "../store/db.js";
import { queueDepth } from "../store/jobs.js";
import { costReport } from "../store/provider-calls.js";

export interface Metrics {
  registry: Registry;
  jobDuration: Histogram<"kind" | "state">;
  linkDuration: Histogram<"provider" | "slot" | "outcome">;
  httpRequests: Counter<"route" | "method" | "status">;
  /** /i/ requests by outcome: hit, rendition_made, generated (within the deadline), fallback. */
  onDemandRequests: Counter<"outcome">;
  /** /i/ requests that waited for a slot's render and gave up at the deadline. */
  onDemandDeadlineMisses: Counter;
  /** Time to make one rendition (decode, resize, encode, store), by format. */
  renditionDuration: Histogram<"format">;
}

/**
 * Prometheus metrics. Queue depth and coverage are read from the database when scraped (one
 * cheap query each), so every process of a fleet reports the same truth.
 */
export function createMetrics(db: Queryable): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "shotlist_process_" });
  const jobDuration = new Histogram({
    name: "shotlist_job_duration_seconds",
    help: "Time from claim to finish of a job attempt, by kind and resulting state",
    labelNames: ["kind", "state"],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60],
    registers: [registry],
  });
  const linkDuration = new Histogram({
    name: "shotlist_provider_call_duration_seconds",
    help: "Time of one chain link (provider call plus checks), by provider, slot and outcome",
    labelNames: ["provider", "slot", "outcome"],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
    registers: [registry],
  });
  const httpRequests = new Counter({
    name: "shotlist_http_requests_total",
    help: "HTTP requests by route, method and status",
    labelNames: ["route", "method", "status"],
    registers: [registry],
  });
  const onDemandRequests = new Counter({
    name: "shotlist_ondemand_requests_total",
    help: "On-demand /i/ image requests by outcome (hit, rendition_made, generated, fallback)",
    labelNames: ["outcome"],
    registers: [registry],
  });
  const onDemandDeadlineMisses = new Counter({
    name: "shotlist_ondemand_deadline_misses_total",
    help: "On-demand requests that waited for a slot's render past the deadline and fell back",
    registers: [registry],
  });
  const renditionDuration = new Histogram({
    name: "shotlist_rendition_duration_seconds",
    help: "Time to make one rendition (decode, resize, encode, store), by format",
    labelNames: ["format"],
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5],
    registers: [registry],
  });
  new Gauge({
    name: "shotlist_queue_jobs",
    help: "Jobs by state",
    labelNames: ["state"],
    registers: [registry],
    async collect() {
      this.reset();
      for (const row of await queueDepth(db)) this.set({ state: row.state }, row.count);
    },
  });
  new Gauge({
    name: "shotlist_queue_oldest_job_age_seconds",
    help: "Age of the oldest job by state",
    labelNames: ["state"],
    registers: [registry],
    async collect() {
      this.reset();
      for (const row of await queueDepth(db)) {
        if (row.oldestAgeSeconds !== null) this.set({ state: row.state }, row.oldestAgeSeconds);
      }
    },
  });
  new Gauge({
    name: "shotlist_provider_spend_today_micros",
    help: "Paid-provider spend this UTC day from the call ledger: spent = succeeded calls at cost, in_doubt = calls of unknown outcome at estimate",
    labelNames: ["provider", "model", "kind"],
    registers: [registry],
    async collect() {
      this.reset();
      const now = new Date();
      const day = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
      for (const line of (await costReport(db, day)).lines) {
        const labels = { provider: line.provider, model: line.model };
        this.set({ ...labels, kind: "spent" }, line.spentMicros);
        this.set({ ...labels, kind: "in_doubt" }, line.inDoubtMicros);
      }
    },
  });
  new Gauge({
    name: "shotlist_catalogue_coverage_ratio",
    help: "Share of products whose every required slot is published",
    registers: [registry],
    async collect() {
      this.set((await catalogueCoverage(db)).productCoverage);
    },
  });
  return {
    registry,
    jobDuration,
    linkDuration,
    httpRequests,
    onDemandRequests,
    onDemandDeadlineMisses,
    renditionDuration,
  };
}
