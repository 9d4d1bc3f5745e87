import type { FastifyInstance } from "fastify";
import { ShotlistError } from "../domain/errors.js";
import { buildApp } from "../http/app.js";
import type { Worker } from "../queue/worker.js";
import type { Runtime } from "../runtime.js";

export interface Serving {
  app: FastifyInstance;
  worker: Worker | undefined;
  url: string;
  stop(): Promise<void>;
}

/** Starts the HTTP API (and, unless told not to, a worker) in this process. */
export async function serve(runtime: Runtime, options: { worker: boolean }): Promise<Serving> {
  const app = await buildApp(runtime);
  try {
    await app.listen({ port: runtime.settings.port, host: runtime.settings.host });
  } catch (error) {
    await app.close();
    const code = (error as NodeJS.ErrnoException).code;
    throw new ShotlistError(
      "invalid_env",
      code === "EADDRINUSE"
        ? `port ${runtime.settings.port} on ${runtime.settings.host} is in use; set PORT to another port`
        : `cannot listen on ${runtime.settings.host}:${runtime.settings.port}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : runtime.settings.port;
  const worker = options.worker ? runtime.startWorker() : undefined;
  return {
    app,
    worker,
    url: `http://${runtime.settings.host}:${port}`,
    async stop() {
      await app.close();
      await worker?.stop();
    },
  };
}

/** Resolves on SIGINT or SIGTERM (the second one exits at once). */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      process.once(signal, () => process.exit(130));
      resolve(signal);
    };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
  });
}
