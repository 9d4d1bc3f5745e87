import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import sharp from "sharp";
import { ShotlistError } from "../../src/domain/errors.js";
import type { OutputSpec, Recipe } from "../../src/domain/recipe.js";
import { recipeHash } from "../../src/domain/recipe.js";
import { readDigitalSourceTypeFromXmp, readRecipeHashFromXmp } from "../../src/pipeline/xmp.js";
import {
  type AsyncPaidProvider,
  type PaidCallContext,
  type PollResult,
  ProviderCallError,
  type ProviderFailureKind,
  type ProviderRequest,
} from "../../src/providers/provider.js";
import type { FakeFault, ProviderFake } from "../fakes/provider-fake.js";
import type { HttpFault, JobFault } from "../fakes/provider-faults.js";

/**
 * The contract every async paid provider passes against its fake (STYLE §2): submit returns the
 * provider's id after one request, polling ends in the image the recipe asks for, a resumed poll
 * never pays again, and each failure of the provider's own protocol maps to one kind, retryable
 * or permanent, after exactly one HTTP request (the resilience layer owns retries).
 */
export interface AsyncContractFake {
  /** The next `count` API requests answer with `fault`. */
  failRequests(fault: HttpFault, count?: number, retryAfterSeconds?: number): void;
  /** The next job submitted ends with `fault`. */
  failNextJob(fault: JobFault): void;
  /** Submit (create) requests received. */
  submits(): number;
  /** Status/result requests received. */
  polls(): number;
  /** The input image the last submit carried, decoded from its data URI. */
  lastInputImage(): Buffer | undefined;
  close(): Promise<void>;
}

export interface AsyncContractSubject {
  provider: AsyncPaidProvider;
  fake: AsyncContractFake;
  /** A request for a text-to-image model of the provider. */
  generate: ProviderRequest;
  /** A request for an edit model, with one reference image. */
  edit: ProviderRequest;
  /** Configured price of one call of each. */
  priceMicros: { generate: number; edit: number };
}

export interface RecipeParts {
  provider: string;
  model: string;
  modelVersion: string;
  output?: Partial<OutputSpec>;
  prompt?: string | null;
  references?: Buffer[];
}

/** A complete request for tests: a recipe with its hash, and reference bytes by hash. */
export async function requestFor(parts: RecipeParts): Promise<ProviderRequest> {
  const { sha256Hex } = await import("../../src/domain/canonical.js");
  const references = new Map<string, Buffer>();
  for (const bytes of parts.references ?? []) references.set(sha256Hex(bytes), bytes);
  const recipe: Recipe = {
    schema: 1,
    category: "shoes",
    slot: "hero",
    provider: parts.provider,
    model: parts.model,
    modelVersion: parts.modelVersion,
    source: { kind: "reference", index: 0 },
    steps: [],
    prompt:
      parts.prompt === undefined ? "a white leather sneaker on a white background" : parts.prompt,
    seed: 4242,
    references: [...references.keys()],
    inputs: { swatches: [] },
    output: { width: 64, height: 48, format: "webp", quality: 90, ...parts.output },
  };
  return { recipe, recipeHash: recipeHash(recipe), references };
}

export async function referencePhoto(): Promise<Buffer> {
  return sharp({ create: { width: 40, height: 30, channels: 3, background: "#3366cc" } })
    .png()
    .toBuffer();
}

export function callContext(signal = new AbortController().signal): PaidCallContext {
  return { signal, callId: `call-${Math.random().toString(36).slice(2)}` };
}

/** Polls until the job ends; the fakes finish after a few polls, so this is bounded. */
export async function pollToEnd(
  provider: AsyncPaidProvider,
  externalId: string,
  maxPolls = 20,
): Promise<Exclude<PollResult, { status: "pending" }>> {
  for (let poll = 0; poll < maxPolls; poll++) {
    const polled = await provider.poll(externalId, callContext());
    if (polled.status !== "pending") return polled;
  }
  throw new Error(`still pending after ${maxPolls} polls`);
}

export async function rejectsWithKind(
  promise: Promise<unknown>,
  kind: ProviderFailureKind,
  retryable: boolean,
): Promise<ProviderCallError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ProviderCallError, `expected a ProviderCallError, got ${error}`);
    assert.equal(error.kind, kind, error.message);
    assert.equal(error.retryable, retryable);
    return error;
  }
  assert.fail(`expected a ${kind} failure, the call succeeded`);
}

const HTTP_FAULTS: readonly { fault: HttpFault; kind: ProviderFailureKind; retryable: boolean }[] =
  [
    { fault: "unauthorized", kind: "unauthorized", retryable: false },
    { fault: "insufficient_credits", kind: "insufficient_credits", retryable: false },
    { fault: "rate_limited", kind: "rate_limited", retryable: true },
    { fault: "server_error", kind: "unavailable", retryable: true },
    { fault: "unavailable", kind: "unavailable", retryable: true },
    { fault: "html_error", kind: "unavailable", retryable: true },
    { fault: "hang", kind: "timeout", retryable: true },
  ];

/** Images a job delivered (and the provider billed) that are unusable. */
const BAD_IMAGES: readonly JobFault[] = [
  "non_image",
  "truncated",
  "wrong_size",
  "wrong_format",
  "html_page",
];

const JOB_FAULTS_OF_SHARED_SUITE: ReadonlySet<FakeFault> = new Set([
  "prediction_failed",
  "content_policy",
  "non_image",
  "truncated",
  "wrong_size",
  "html_page",
]);

/**
 * The shared suite's control surface (test/fakes/provider-fake.ts) over an async fake: faults
 * about the image or the model end the next job (the API answers 200 and the prediction ends
 * badly, as on the real services); the others answer the next API request.
 */
export function sharedSuiteFake(parts: {
  url: string;
  apiKey: string;
  log: { method: string; path: string }[];
  failRequests(fault: HttpFault, count: number, retryAfterSeconds: number): void;
  failNextJob(fault: JobFault): void;
  close(): Promise<void>;
}): ProviderFake {
  return {
    url: parts.url,
    apiKey: parts.apiKey,
    get calls() {
      return parts.log;
    },
    failNext(fault, count = 1, options = {}) {
      if (JOB_FAULTS_OF_SHARED_SUITE.has(fault)) {
        for (let index = 0; index < count; index++) parts.failNextJob(fault as JobFault);
      } else {
        parts.failRequests(fault as HttpFault, count, options.retryAfterSeconds ?? 2);
      }
    },
    faults: new Set<FakeFault>([
      "unauthorized",
      "insufficient_credits",
      "content_policy",
      "rate_limited",
      "server_error",
      "unavailable",
      "hang",
      "html_page",
      "non_image",
      "truncated",
      "wrong_size",
      "prediction_failed",
    ]),
    close: parts.close,
  };
}

/** Runs the contract against one adapter; `start` builds a fresh adapter and fake. */
export function asyncProviderContract(
  label: string,
  start: (options: { timeoutMs: number }) => Promise<AsyncContractSubject>,
): void {
  describe(`${label}: async provider contract`, () => {
    let subject: AsyncContractSubject;
    before(async () => {
      subject = await start({ timeoutMs: 1_000 });
    });
    after(async () => {
      await subject.fake.close();
    });

    it("declares a paid async provider with limits and prices from its table", () => {
      const { provider, generate, edit, priceMicros } = subject;
      assert.equal(provider.billing, "paid");
      assert.equal(provider.mode, "async");
      assert.ok(provider.operations.includes("generate"));
      assert.ok(provider.limits.maxSide > 0 && provider.limits.requestsPerMinute > 0);
      assert.ok(provider.limits.formats.includes("webp"));
      assert.equal(provider.estimateCostMicros(generate), priceMicros.generate);
      assert.equal(provider.estimateCostMicros(edit), priceMicros.edit);
      assert.equal(provider.modelVersion(generate.recipe.model), generate.recipe.modelVersion);
    });

    it("returns the provider's id after one submit, then polls to the recipe's image", async () => {
      const { provider, fake, generate } = subject;
      const submitsBefore = fake.submits();
      const { externalId } = await provider.submit(generate, callContext());
      assert.ok(externalId.length > 0);
      assert.equal(fake.submits() - submitsBefore, 1);
      const first = await provider.poll(externalId, callContext());
      assert.equal(first.status, "pending");
      const done = await pollToEnd(provider, externalId);
      assert.equal(done.status, "succeeded", done.status === "failed" ? done.error.message : "");
      if (done.status !== "succeeded") return;
      const { result } = done;
      const { output } = generate.recipe;
      assert.deepEqual(
        [result.format, result.width, result.height],
        [output.format, output.width, output.height],
      );
      const decoded = await sharp(result.bytes).metadata();
      assert.deepEqual([decoded.width, decoded.height], [output.width, output.height]);
      assert.equal(result.costMicros, subject.priceMicros.generate);
      assert.ok(result.providerRequestId && externalId.includes(result.providerRequestId));
      const xmp = decoded.xmp?.toString("utf8") ?? "";
      assert.equal(readRecipeHashFromXmp(xmp), generate.recipeHash, "labelled with its recipe");
      assert.match(readDigitalSourceTypeFromXmp(xmp) ?? "", /\/trainedAlgorithmicMedia$/);
    });

    it("answers a repeated poll of a finished job with the same bytes and no new submit", async () => {
      const { provider, fake, generate } = subject;
      const { externalId } = await provider.submit(generate, callContext());
      const first = await pollToEnd(provider, externalId);
      const submits = fake.submits();
      const again = await provider.poll(externalId, callContext());
      assert.equal(fake.submits(), submits);
      assert.ok(first.status === "succeeded" && again.status === "succeeded");
      assert.ok(first.result.bytes.equals(again.result.bytes));
    });

    it("runs submit and polling to the end for callers without a ledger", async () => {
      const { provider, fake, edit } = subject;
      const submits = fake.submits();
      const result = await provider.run(edit, callContext());
      assert.equal(fake.submits() - submits, 1);
      assert.equal(result.width, edit.recipe.output.width);
      assert.equal(result.costMicros, subject.priceMicros.edit);
      const xmp = (await sharp(result.bytes).metadata()).xmp?.toString("utf8") ?? "";
      assert.equal(readRecipeHashFromXmp(xmp), edit.recipeHash);
      // A reference photo went in: a composite with AI, not wholly generated (IPTC).
      assert.match(
        readDigitalSourceTypeFromXmp(xmp) ?? "",
        /compositeWithTrainedAlgorithmicMedia$/,
      );
    });

    it("sends the first reference image as the edit model's input image", async () => {
      const { provider, fake, edit } = subject;
      await provider.submit(edit, callContext());
      const sent = fake.lastInputImage();
      const hash = edit.recipe.references[0];
      assert.ok(sent && hash, "the submit carried an input image");
      assert.ok(sent.equals(edit.references.get(hash) ?? Buffer.alloc(0)));
    });

    it("refuses an edit without reference bytes, before any request", async () => {
      const { provider, fake, edit } = subject;
      const submits = fake.submits();
      const bare: ProviderRequest = { ...edit, references: new Map() };
      await assert.rejects(
        provider.submit(bare, callContext()),
        (error: unknown) =>
          error instanceof ShotlistError && error.code === "reference_image_missing",
      );
      assert.equal(fake.submits(), submits);
    });

    it("refuses an edit whose reference photo does not decode, before any request", async () => {
      const { provider, fake, edit } = subject;
      const submits = fake.submits();
      const hash = edit.recipe.references[0] ?? "";
      const broken: ProviderRequest = {
        ...edit,
        references: new Map([[hash, Buffer.from("not a photo at all")]]),
      };
      await assert.rejects(
        provider.submit(broken, callContext()),
        (error: unknown) =>
          error instanceof ShotlistError && error.code === "reference_image_undecodable",
      );
      assert.equal(fake.submits(), submits);
    });

    for (const { fault, kind, retryable } of HTTP_FAULTS) {
      it(`maps a submit answered with ${fault} to ${kind} after exactly one request`, async () => {
        const { provider, fake, generate } = subject;
        const submits = fake.submits();
        fake.failRequests(fault, 1, 7);
        const error = await rejectsWithKind(
          provider.submit(generate, callContext()),
          kind,
          retryable,
        );
        assert.equal(fake.submits() - submits, 1);
        if (fault === "rate_limited") assert.equal(error.retryAfterMs, 7_000);
      });
    }

    it("throws a retryable failure for a throttled poll, and the next poll goes on", async () => {
      const { provider, fake, generate } = subject;
      const { externalId } = await provider.submit(generate, callContext());
      const polls = fake.polls();
      fake.failRequests("rate_limited", 1, 2);
      const error = await rejectsWithKind(
        provider.poll(externalId, callContext()),
        "rate_limited",
        true,
      );
      assert.equal(error.retryAfterMs, 2_000);
      assert.equal(fake.polls() - polls, 1);
      const done = await pollToEnd(provider, externalId);
      assert.equal(done.status, "succeeded");
    });

    it("ends a submit answered 200 with an HTML page as bad_output, permanent", async () => {
      const { provider, fake, generate } = subject;
      const submits = fake.submits();
      fake.failRequests("portal_page", 1);
      await rejectsWithKind(provider.submit(generate, callContext()), "bad_output", false);
      assert.equal(fake.submits() - submits, 1);
    });

    it("throws unavailable for a poll answered 200 with an HTML page; the next poll goes on", async () => {
      const { provider, fake, generate } = subject;
      const { externalId } = await provider.submit(generate, callContext());
      fake.failRequests("portal_page", 1);
      await rejectsWithKind(provider.poll(externalId, callContext()), "unavailable", true);
      const done = await pollToEnd(provider, externalId);
      assert.equal(done.status, "succeeded");
    });

    it("times out a poll that gets no answer (retryable), and the job is still there", async () => {
      const { provider, fake, generate } = subject;
      const { externalId } = await provider.submit(generate, callContext());
      fake.failRequests("hang", 1);
      await rejectsWithKind(provider.poll(externalId, callContext()), "timeout", true);
      const done = await pollToEnd(provider, externalId);
      assert.equal(done.status, "succeeded");
    });

    it("ends a job the provider refused on content policy as a failed poll, permanent", async () => {
      const { provider, fake, generate } = subject;
      fake.failNextJob("content_policy");
      const { externalId } = await provider.submit(generate, callContext());
      const done = await pollToEnd(provider, externalId);
      assert.equal(done.status, "failed");
      if (done.status !== "failed") return;
      assert.equal(done.error.kind, "content_policy", done.error.message);
      assert.equal(done.error.retryable, false);
    });

    // A job that succeeded delivered (and was billed for) its image: an unusable one is thrown
    // as bad_output, which the ledger records as a billed call with no usable output, not as a
    // failed job.
    for (const fault of BAD_IMAGES) {
      it(`throws bad_output, permanent, for a finished job whose image is ${fault}`, async () => {
        const { provider, fake, generate } = subject;
        fake.failNextJob(fault);
        const { externalId } = await provider.submit(generate, callContext());
        let polled = await provider.poll(externalId, callContext());
        for (let poll = 0; poll < 20 && polled.status === "pending"; poll++) {
          try {
            polled = await provider.poll(externalId, callContext());
          } catch (error) {
            assert.ok(error instanceof ProviderCallError);
            assert.equal(error.kind, "bad_output", error.message);
            assert.equal(error.retryable, false);
            return;
          }
        }
        assert.fail(`the poll ended ${polled.status} instead of throwing bad_output`);
      });
    }

    it("stops when the caller aborts", async () => {
      const { provider, generate } = subject;
      const abort = new AbortController();
      const submitting = provider.submit(generate, callContext(abort.signal));
      abort.abort(new Error("worker shutting down"));
      await assert.rejects(submitting, /worker shutting down/);
    });
  });
}
