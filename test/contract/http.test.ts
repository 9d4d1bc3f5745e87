import { createHttpProvider } from "../../src/providers/http/index.js";
import { startFakePaidProvider } from "../fakes/paid-provider.js";
import { paidProviderContract } from "./paid-provider.contract.js";

const FAULTS = {
  rate_limited: "429",
  unavailable: "500",
  unauthorized: "401",
  hang: "hang",
} as const;

for (const mode of ["sync", "async"] as const) {
  paidProviderContract(`http (${mode}) against the fake paid provider`, async () => {
    const fake = await startFakePaidProvider({
      asyncDurationMs: 20,
      faults: { retryAfterSeconds: 2 },
    });
    return {
      provider: createHttpProvider({
        name: "http",
        baseUrl: fake.url,
        apiKey: fake.apiKey,
        mode,
        perCallMicros: 10_000,
      }),
      failNext: (fault) => fake.script(FAULTS[fault]),
      billedKeys: () => fake.billedKeys(),
      retryAfterMs: 2000,
      close: () => fake.close(),
    };
  });
}
