/**
 * The chaos runner's clients: several TallyClients (the client library, as applications use it)
 * in the runner process, each with a few allocate() loops over several namespaces, some with
 * count > 1, paced to a total rate. Every call is one history operation, timed on one clock —
 * performance.now() of the runner process, in ms since the run started — read just before the
 * call and when its answer arrives, so "A completed before B was invoked" is exact.
 *
 * Outcome of a call (decided from src/client/errors.ts):
 *   ok       it resolved: the IDs first..first+count-1 are durable and ours alone.
 *   fail     it provably never reached a node: ClientOverloadedError (refused before sending),
 *            or ClientDeadlineExceededError with attempts === 0 (no attempt was ever written).
 *   unknown  anything else: a deadline after an attempt was sent, ClientRequestError (its last
 *            attempt was refused, but an earlier one may have reached a primary whose answer
 *            was lost, and the client does not say how many it made), ClientClosedError and
 *            ClientAbortedError (an attempt may be in flight), any other error. A node may
 *            have allocated IDs for it; they are never handed to anyone (a gap).
 */
import { performance } from 'node:perf_hooks';
import {
  ClientDeadlineExceededError,
  ClientOverloadedError,
  TallyClient,
  controllerResolver,
  type ControllerResolver,
} from '../client';
import type { HistoryOp, Outcome } from '../check/history';
import { seededRandom } from '../core/seeded-random';

export function outcomeOf(err: unknown): Outcome {
  if (err instanceof ClientOverloadedError) return 'fail';
  if (err instanceof ClientDeadlineExceededError && err.attempts === 0) return 'fail';
  return 'unknown';
}

/** Every history line goes through here: the runner's one clock and its one writer. */
export class HistoryRecorder {
  readonly ops: HistoryOp[] = [];
  readonly errors = new Map<string, number>();
  /** Longest time without an ok answer, between two ok answers (ms), and where it began. */
  longestGapMs = 0;
  longestGapFromMs = 0;
  private lastOkMs: number | null = null;
  private readonly t0 = performance.now();

  constructor(private readonly write: (op: HistoryOp) => void) {}

  /** ms since the run started, on the clock every invokeMs/completeMs is read from. */
  now(): number {
    return Math.round((performance.now() - this.t0) * 1000) / 1000;
  }

  record(op: HistoryOp, err?: unknown): void {
    this.ops.push(op);
    this.write(op);
    if (err !== undefined) {
      const name = err instanceof Error ? err.name : typeof err;
      this.errors.set(name, (this.errors.get(name) ?? 0) + 1);
    }
    if (op.outcome !== 'ok') return;
    if (this.lastOkMs !== null && op.completeMs - this.lastOkMs > this.longestGapMs) {
      this.longestGapMs = op.completeMs - this.lastOkMs;
      this.longestGapFromMs = this.lastOkMs;
    }
    this.lastOkMs = Math.max(this.lastOkMs ?? 0, op.completeMs);
  }

  /** The last ok answer's completeMs, or null before any. */
  get lastOk(): number | null {
    return this.lastOkMs;
  }

  /** Highest acknowledged ID per namespace. */
  highestAcked(): Map<string, bigint> {
    const out = new Map<string, bigint>();
    for (const op of this.ops) {
      if (op.outcome !== 'ok' || op.first === null) continue;
      const last = op.first + BigInt(op.count) - 1n;
      if (last > (out.get(op.ns) ?? 0n)) out.set(op.ns, last);
    }
    return out;
  }

  /** One allocate() through `client`, recorded. */
  async allocate(
    client: TallyClient,
    ns: string,
    count: number,
    deadlineMs: number,
  ): Promise<HistoryOp> {
    const invokeMs = this.now();
    try {
      const a = await client.allocate(ns, count, { deadlineMs });
      const op = { ns, first: BigInt(a.first), count, invokeMs, completeMs: this.now() };
      this.record({ ...op, outcome: 'ok' });
      return { ...op, outcome: 'ok' };
    } catch (err) {
      const op: HistoryOp = {
        ns,
        first: null,
        count,
        invokeMs,
        completeMs: this.now(),
        outcome: outcomeOf(err),
      };
      this.record(op, err);
      return op;
    }
  }
}

export interface LoadOptions {
  clients: number;
  loopsPerClient: number;
  namespaces: string[];
  /** Calls per second over all loops (each loop sleeps between its calls). */
  ratePerSec: number;
  deadlineMs: number;
  seed: number;
}

/** The node addresses and the controller, as the clients are told them. */
export interface Endpoints {
  nodes: [string, string];
  controller: string;
}

/**
 * Clients differ the way applications do: one lists a first, one b first, one also asks the
 * controller where the primary is.
 */
export function makeClient(i: number, at: Endpoints): { client: TallyClient; close(): void } {
  const [a, b] = at.nodes;
  const addresses = i % 2 === 0 ? [a, b] : [b, a];
  const resolver: ControllerResolver | undefined =
    i % 3 === 2 ? controllerResolver(at.controller) : undefined;
  const client = new TallyClient({ addresses, resolvePrimary: resolver });
  return {
    client,
    close: () => {
      client.close();
      resolver?.close();
    },
  };
}

export class Load {
  private running = true;
  private readonly loops: Promise<void>[] = [];
  private readonly clients: Array<{ client: TallyClient; close(): void }> = [];
  private readonly sleeps = new Set<() => void>();

  constructor(
    private readonly recorder: HistoryRecorder,
    at: Endpoints,
    private readonly opts: LoadOptions,
  ) {
    const loopsTotal = opts.clients * opts.loopsPerClient;
    const meanPauseMs = (1000 * loopsTotal) / opts.ratePerSec;
    for (let c = 0; c < opts.clients; c++) {
      const client = makeClient(c, at);
      this.clients.push(client);
      for (let l = 0; l < opts.loopsPerClient; l++) {
        const rand = seededRandom(opts.seed * 1000 + c * 100 + l);
        this.loops.push(this.loop(client.client, rand, meanPauseMs));
      }
    }
  }

  private async loop(client: TallyClient, rand: () => number, meanPauseMs: number): Promise<void> {
    const { namespaces, deadlineMs } = this.opts;
    while (this.running) {
      const ns = namespaces[Math.floor(rand() * namespaces.length)] as string;
      const count = rand() < 0.8 ? 1 : 2 + Math.floor(rand() * 7);
      await this.recorder.allocate(client, ns, count, deadlineMs);
      await this.sleep(rand() * 2 * meanPauseMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        this.sleeps.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      this.sleeps.add(wake);
    });
  }

  /** Stops every loop after its current call has completed (ok or not), then the clients. */
  async stop(): Promise<void> {
    this.running = false;
    for (const wake of [...this.sleeps]) wake();
    await Promise.all(this.loops);
    for (const c of this.clients) c.close();
  }
}
