// Load for the failover benchmark (a child of bench-failover.mjs; IPC only).
//   parent → {type:'start', addresses, inFlight, namespace, distDir}
//   parent → {type:'mark', atMs, epoch}   child → {type:'resumed', atMs, markMs}  (the first
//            success in an epoch above `epoch` whose call *completed* after atMs, wall clock;
//            answered once per mark). It also opens the latency window 'warm': calls started
//            in the second after that success (the promoted node's first second).
//   parent → {type:'window', id, fromMs, toMs}  latencies of calls started in [fromMs, toMs)
//   parent → {type:'window-report', id}  child → {type:'window', id, count, p50Ms, p99Ms,
//            maxMs} (a call of the window still pending counts with its time so far)
//   parent → {type:'gap-start'} … {type:'gap-stop'}   child → {type:'gap', maxMs}  (the longest
//            time without a completed allocation in between: a switchover's pause)
//   parent → {type:'stop'}         child → {type:'result', ok, failed, duplicates, backwards}
// Every acknowledged ID is checked: no ID twice; and an allocation that started after
// another completed has higher IDs (checked per loop, where start-after-complete holds).
import path from 'node:path';
import { performance } from 'node:perf_hooks';

let client;
let running = false;
let ok = 0;
let failed = 0;
let duplicates = 0;
let backwards = 0;
const seen = new Set();
let mark = null;
const loops = [];
/** Per loop: the call in flight (wall ms and performance ms at its start), or null. */
const inFlight = [];
/** Latency windows by id: calls started in [fromMs, toMs) (wall clock), latencies in ms. */
const windows = new Map();
const warmWindowMs = 1000;
/** Longest time without any completed allocation since 'gap-start' (the pause a client sees). */
let gap = null;

function record(first, count) {
  for (let id = first; id < first + count; id++) {
    if (seen.has(id)) duplicates++;
    seen.add(id);
  }
}

function noteLatency(startedMs, latencyMs) {
  for (const w of windows.values()) {
    if (startedMs < w.fromMs || startedMs >= w.toMs) continue;
    w.latencies.push(latencyMs);
    // Per second of the window too: a one-second p99 to compare the first second with.
    const k = Math.floor((startedMs - w.fromMs) / 1000);
    (w.seconds[k] ??= []).push(latencyMs);
  }
}

async function loop(k, namespace) {
  let highest = 0;
  while (running) {
    const call = { wallMs: Date.now(), perfMs: performance.now() };
    inFlight[k] = call;
    try {
      const a = await client.allocate(namespace, 1, { deadlineMs: 15_000 });
      const now = Date.now();
      inFlight[k] = null;
      noteLatency(call.wallMs, performance.now() - call.perfMs);
      ok++;
      record(a.first, a.count);
      if (a.first <= highest) backwards++;
      highest = a.first + a.count - 1;
      if (gap !== null) {
        gap.maxMs = Math.max(gap.maxMs, now - gap.lastMs);
        gap.lastMs = now;
      }
      if (mark !== null && now > mark.atMs && a.epoch > mark.epoch) {
        process.send({ type: 'resumed', atMs: now, markMs: mark.atMs });
        windows.set('warm', { fromMs: now, toMs: now + warmWindowMs, latencies: [], seconds: [] });
        mark = null;
      }
    } catch {
      inFlight[k] = null;
      failed++;
    }
  }
}

function quantile(sorted, q) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

function windowReport(id) {
  const w = windows.get(id);
  windows.delete(id);
  if (w === undefined) return { type: 'window', id, count: 0 };
  const now = performance.now();
  for (const call of inFlight) {
    if (call && call.wallMs >= w.fromMs && call.wallMs < w.toMs)
      w.latencies.push(now - call.perfMs);
  }
  const sorted = w.latencies.sort((x, y) => x - y);
  const round = (ms) => (ms === null ? null : Math.round(ms * 100) / 100);
  // The p99 of each whole second of the window (the last, partial one left out).
  const perSecond = w.seconds
    .slice(0, Math.floor((w.toMs - w.fromMs) / 1000))
    .filter((l) => l !== undefined && l.length > 0)
    .map((l) =>
      quantile(
        l.sort((x, y) => x - y),
        0.99,
      ),
    )
    .sort((x, y) => x - y);
  return {
    type: 'window',
    id,
    count: sorted.length,
    p50Ms: round(quantile(sorted, 0.5)),
    p99Ms: round(quantile(sorted, 0.99)),
    maxMs: round(sorted[sorted.length - 1] ?? null),
    secondP99MedianMs: round(quantile(perSecond, 0.5)),
    secondP99MaxMs: round(perSecond[perSecond.length - 1] ?? null),
  };
}

process.on('message', async (msg) => {
  if (msg.type === 'start') {
    const { TallyClient } = await import(path.join(msg.distDir, 'client/index.js'));
    client = new TallyClient({ addresses: msg.addresses, deadlineMs: 15_000 });
    running = true;
    for (let i = 0; i < msg.inFlight; i++) {
      inFlight.push(null);
      loops.push(loop(i, msg.namespace));
    }
    process.send({ type: 'started' });
  } else if (msg.type === 'mark') {
    mark = { atMs: msg.atMs, epoch: msg.epoch };
  } else if (msg.type === 'window') {
    windows.set(msg.id, { fromMs: msg.fromMs, toMs: msg.toMs, latencies: [], seconds: [] });
  } else if (msg.type === 'window-report') {
    process.send(windowReport(msg.id));
  } else if (msg.type === 'gap-start') {
    gap = { lastMs: Date.now(), maxMs: 0 };
  } else if (msg.type === 'gap-stop') {
    process.send({ type: 'gap', maxMs: gap?.maxMs ?? null });
    gap = null;
  } else if (msg.type === 'count') {
    process.send({ type: 'count', ok, failed });
  } else if (msg.type === 'stop') {
    running = false;
    await Promise.all(loops);
    client.close();
    process.send({ type: 'result', ok, failed, duplicates, backwards, ids: seen.size });
    process.exit(0);
  }
});
