/**
 * Crash loop: a real `tally serve` under concurrent unary and stream load on several
 * namespaces is SIGKILLed at random moments, restarted on the same data dir, and the whole
 * client-side history is checked for the invariants (history.ts). The seed is printed and
 * can be replayed with CRASH_SEED=<n>.
 */
import { afterAll, describe, expect, it } from 'vitest';
import {
  assertBuilt,
  counterClient,
  killChildren,
  removeTempDirs,
  startServe,
  tempDir,
} from '../integration/serve-process';
import { History } from './history';
import { lastIds, prng, streamWorker, unaryWorker } from './load';

const kills = Number(process.env.CRASH_KILLS ?? 25);
const seed = Number(process.env.CRASH_SEED ?? Date.now() % 1_000_000);

afterAll(async () => {
  await killChildren();
  await removeTempDirs();
});

describe('crash loop', () => {
  it(`SIGKILL under load ${kills} times never loses or reissues an acknowledged ID (seed ${seed})`, async () => {
    assertBuilt();
    const rand = prng(seed);
    const dataDir = await tempDir('tally-crash-');
    const history = new History();
    const args = ['--checkpoint-records', '3000', '--segment-size-bytes', String(256 * 1024)];
    let acksBeforeKills = 0;
    for (let round = 0; round < kills; round++) {
      const server = await startServe(dataDir, args);
      // Never backwards: the recovered counters cover everything acknowledged so far.
      const recovered = await lastIds(server.target);
      for (const [ns, highest] of history.highestAcked()) {
        expect(
          recovered.get(ns) ?? 0,
          `round ${round} ${ns} (seed ${seed})`,
        ).toBeGreaterThanOrEqual(highest);
      }
      const client = counterClient(server.target);
      const loads = [
        ...Array.from({ length: 6 }, () => unaryWorker(client, history, rand)),
        streamWorker(client, history, rand, 16),
        streamWorker(client, history, rand, 16),
      ];
      const ackedAtStart = history.acked().length;
      await new Promise((r) => setTimeout(r, 100 + rand() * 400));
      server.proc.kill('SIGKILL');
      const exit = await server.exited;
      expect(exit.signal).toBe('SIGKILL');
      await Promise.all(loads.map((l) => l.stop()));
      client.close();
      // The load really ran while the node was killed (not an idle node).
      if (history.acked().length > ackedAtStart) acksBeforeKills++;
    }
    expect(acksBeforeKills).toBe(kills);
    const violations = history.violations();
    expect(violations.slice(0, 10), `seed ${seed}`).toEqual([]);
    expect(history.acked().length).toBeGreaterThan(kills * 50);
  }, 300_000);
});
