// Load for the failover benchmark (a child of bench-failover.mjs; IPC only).
//   parent → {type:'start', addresses, inFlight, namespace, distDir}
//   parent → {type:'mark', atMs}   child → {type:'resumed', atMs, firstMs}  (first success
//            whose call *completed* after atMs, wall clock; answered once per mark)
//   parent → {type:'gap-start'} … {type:'gap-stop'}   child → {type:'gap', maxMs}  (the longest
//            time without a completed allocation in between: a switchover's pause)
//   parent → {type:'stop'}         child → {type:'result', ok, failed, duplicates, backwards}
// Every acknowledged ID is checked: no ID twice; and an allocation that started after
// another completed has higher IDs (checked per loop, where start-after-complete holds).
import path from 'node:path';

let client;
let running = false;
let ok = 0;
let failed = 0;
let duplicates = 0;
let backwards = 0;
const seen = new Set();
let mark = null;
const loops = [];
/** Longest time without any completed allocation since 'gap-start' (the pause a client sees). */
let gap = null;

function record(first, count) {
  for (let id = first; id < first + count; id++) {
    if (seen.has(id)) duplicates++;
    seen.add(id);
  }
}

async function loop(namespace) {
  let highest = 0;
  while (running) {
    try {
      const a = await client.allocate(namespace, 1, { deadlineMs: 15_000 });
      const now = Date.now();
      ok++;
      record(a.first, a.count);
      if (a.first <= highest) backwards++;
      highest = a.first + a.count - 1;
      if (gap !== null) {
        gap.maxMs = Math.max(gap.maxMs, now - gap.lastMs);
        gap.lastMs = now;
      }
      if (mark !== null && now > mark) {
        process.send({ type: 'resumed', atMs: now, markMs: mark });
        mark = null;
      }
    } catch {
      failed++;
    }
  }
}

process.on('message', async (msg) => {
  if (msg.type === 'start') {
    const { TallyClient } = await import(path.join(msg.distDir, 'client/index.js'));
    client = new TallyClient({ addresses: msg.addresses, deadlineMs: 15_000 });
    running = true;
    for (let i = 0; i < msg.inFlight; i++) loops.push(loop(msg.namespace));
    process.send({ type: 'started' });
  } else if (msg.type === 'mark') {
    mark = msg.atMs;
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
