import { seededRandom } from "../../src/pipeline/colors.js";
import { waitFor } from "./backends.js";
import { type CliProcess, runCli } from "./cli.js";

/** One `shotlist worker` process of a fleet. */
export interface FleetWorker {
  /** Which place in the fleet it holds (a restarted worker takes its victim's place). */
  readonly place: number;
  readonly process: CliProcess;
  readonly pid: number;
}

export interface WorkerFleetOptions {
  /** Worker processes kept running. */
  count: number;
  /** Environment of every worker (database URL, data dir, config, lease, …). */
  env: Record<string, string>;
  /** Seed of the random choice of victims, printed by tests so a run can be replayed. */
  seed?: number;
}

export interface WorkerFleet {
  /** The live workers, one per place. */
  current(): readonly FleetWorker[];
  /** Every worker ever started, killed ones included. */
  all(): readonly FleetWorker[];
  /** Workers killed so far. */
  kills(): number;
  /** Resolves when every live worker has said it is running (claiming jobs). */
  ready(timeoutMs?: number): Promise<void>;
  /** SIGKILLs one ready worker chosen at random, waits for it to die and starts its successor. */
  killOne(): Promise<FleetWorker | undefined>;
  /** Kills a random worker every `everyMs` until `stopChaos()` (a tick with none ready skips). */
  /** A SIGKILL every `everyMs`, `maxKills` at most (then the fleet runs on undisturbed). */
  startChaos(everyMs: number, maxKills?: number): void;
  stopChaos(): Promise<void>;
  /**
   * Ends the chaos, lets starting workers finish starting, then SIGTERM to every live worker;
   * resolves with their exit codes (0 = a clean stop).
   */
  stop(): Promise<(number | null)[]>;
  /** The output (stdout + stderr) of every worker ever started, labelled by pid. */
  output(): string;
}

const isReady = (worker: FleetWorker) => /worker \S+ running/.test(worker.process.output());
const hasExited = (worker: FleetWorker) =>
  worker.process.child.exitCode !== null || worker.process.child.signalCode !== null;

/** Starts `count` worker processes (`shotlist worker` from source) and keeps that many alive. */
export function startWorkerFleet(options: WorkerFleetOptions): WorkerFleet {
  const random = seededRandom(options.seed ?? 1);
  const started: FleetWorker[] = [];
  const places: FleetWorker[] = [];
  let kills = 0;
  let chaos: { timer: NodeJS.Timeout; running: Promise<unknown> } | undefined;
  let stopped = false;

  const spawnAt = (place: number): FleetWorker => {
    const process = runCli(["worker"], options.env);
    if (process.child.pid === undefined) throw new Error("worker process did not start");
    const worker: FleetWorker = { place, process, pid: process.child.pid };
    started.push(worker);
    places[place] = worker;
    return worker;
  };
  for (let place = 0; place < options.count; place++) spawnAt(place);

  const killOne = async (): Promise<FleetWorker | undefined> => {
    const candidates = places.filter(isReady);
    if (candidates.length === 0 || stopped) return undefined;
    const victim = candidates[Math.floor(random() * candidates.length)];
    if (!victim) return undefined;
    victim.process.child.kill("SIGKILL");
    await victim.process.exited;
    kills++;
    if (!stopped) spawnAt(victim.place);
    return victim;
  };

  return {
    current: () => [...places],
    all: () => [...started],
    kills: () => kills,
    async ready(timeoutMs = 60_000) {
      await waitFor(
        async () => places.every(isReady),
        `${places.length} worker processes to start`,
        timeoutMs,
        50,
      );
    },
    killOne,
    startChaos(everyMs, maxKills = Number.POSITIVE_INFINITY) {
      if (chaos) return;
      let running: Promise<unknown> = Promise.resolve();
      const timer = setInterval(() => {
        if (kills >= maxKills) return;
        // One kill at a time: a tick that comes while a victim is still dying waits for it.
        running = running.then(() => (kills < maxKills ? killOne() : undefined));
      }, everyMs);
      chaos = {
        timer,
        get running() {
          return running;
        },
      };
    },
    async stopChaos() {
      if (!chaos) return;
      clearInterval(chaos.timer);
      await chaos.running;
      chaos = undefined;
    },
    async stop() {
      await this.stopChaos();
      stopped = true;
      // A worker still booting has no SIGTERM handler yet and would die of the signal: let the
      // successors of the last victims finish starting, so every exit code says something.
      await waitFor(
        async () => places.every((worker) => isReady(worker) || hasExited(worker)),
        "the workers to finish starting before they are stopped",
        60_000,
        50,
      );
      for (const worker of places) {
        if (!hasExited(worker)) worker.process.child.kill("SIGTERM");
      }
      return Promise.all(places.map((worker) => worker.process.exited));
    },
    output: () =>
      started
        .map(
          (worker) =>
            `--- worker pid ${worker.pid} (place ${worker.place})\n${worker.process.output()}`,
        )
        .join("\n"),
  };
}
