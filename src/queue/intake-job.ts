import { type IntakeDeps, submitProduct } from "../intake/submit.js";
import { type ClaimedJob, plainAttempt } from "../store/jobs.js";
import type { IntakeJobPayload } from "../store/webhooks.js";
import type { JobContext, JobHandler, JobOutcome } from "./worker.js";

/**
 * Runs a verified webhook delivery through the one intake (DESIGN §2): the webhook door
 * answered 200 once the delivery was durably queued; here the reference images are fetched,
 * the product planned and its render jobs written. A failure (a reference URL that 404s, a
 * host that is down) follows the queue's rules: retryable errors retry with backoff, permanent
 * ones and the last attempt put the job in needs_review with the reason in `last_error`.
 * Running twice (a lease that expired) is harmless: the intake is idempotent on its input.
 */
export function createIntakeJobHandler(intake: IntakeDeps): JobHandler {
  return {
    async run(job: ClaimedJob, context: JobContext): Promise<JobOutcome> {
      const payload = job.payload as IntakeJobPayload;
      const startedAt = new Date();
      const result = await submitProduct(intake, payload.product);
      context.log.info(
        {
          source: payload.source,
          deliveryId: payload.deliveryId,
          sku: result.sku,
          changed: result.changed,
          jobsCreated: result.jobsCreated,
        },
        "webhook delivery taken in",
      );
      return {
        state: "succeeded",
        attempts: [plainAttempt("succeeded", null, startedAt)],
      };
    },
    // The reason is on the job (last_error and its attempts); there is no slot to mark yet.
    async onNeedsReview() {},
  };
}
