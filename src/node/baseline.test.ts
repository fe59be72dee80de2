import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import pino from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TallyError } from '../core/errors';
import { countMax } from '../core/limits';
import { createMetrics } from '../core/metrics';
import { baselineTableFileName, openBaselineNode, recordBytes } from './baseline';
import type { AllocateResult, CounterNode } from './types';

const logger = pino({ level: 'silent' });
let dataDir: string;

beforeEach(async () => {
  dataDir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'tally-baseline-'));
});
afterEach(async () => {
  await fs.promises.rm(dataDir, { recursive: true, force: true });
});

function open(id = 'n1'): Promise<CounterNode> {
  return openBaselineNode({ id, dataDir, logger, metrics: createMetrics({ defaults: false }) });
}

function allocate(node: CounterNode, namespace: string, count: number): Promise<AllocateResult> {
  return new Promise((resolve, reject) => {
    node.allocate(namespace, count, undefined, (err, result) => {
      if (err !== null) reject(err);
      else resolve(result as AllocateResult);
    });
  });
}

function allocateError(node: CounterNode, namespace: string, count: number): Promise<TallyError> {
  return new Promise((resolve, reject) => {
    node.allocate(namespace, count, undefined, (err) => {
      if (err !== null) resolve(err);
      else reject(new Error('expected the allocation to fail'));
    });
  });
}

describe('baseline engine', () => {
  it('hands out increasing, non-overlapping ranges per namespace, in arrival order', async () => {
    const node = await open();
    const results = await Promise.all([
      allocate(node, 'a', 1),
      allocate(node, 'a', 5),
      allocate(node, 'b', 2),
      allocate(node, 'a', 1),
    ]);
    expect(results.map((r) => [r.first, r.count])).toEqual([
      [1, 1],
      [2, 5],
      [1, 2],
      [7, 1],
    ]);
    expect(results.map((r) => r.index)).toEqual([1, 2, 3, 4]);
    expect(node.status().namespaces).toEqual([
      { name: 'a', lastId: 7 },
      { name: 'b', lastId: 2 },
    ]);
    await node.close();
  });

  it('keeps every acknowledged allocation across a reopen', async () => {
    const first = await open();
    const pending: Array<Promise<AllocateResult>> = [];
    for (let i = 0; i < 50; i++) pending.push(allocate(first, i % 2 === 0 ? 'x' : 'y.z', 3));
    await Promise.all(pending);
    await first.close();

    const second = await open();
    expect(second.status().namespaces).toEqual([
      { name: 'x', lastId: 75 },
      { name: 'y.z', lastId: 75 },
    ]);
    expect((await allocate(second, 'x', 1)).first).toBe(76);
    expect((await allocate(second, 'new-one', 1)).first).toBe(1);
    await second.close();
  });

  it('recovers the other copy when the last in-place write was torn', async () => {
    const first = await open();
    await allocate(first, 'ns', 10); // copy 0 holds 10
    await allocate(first, 'ns', 10); // copy 1 holds 20
    await first.close();
    // Tear copy 0's next update (an unacknowledged write of 30): garble half the record.
    const fd = fs.openSync(path.join(dataDir, baselineTableFileName), 'r+');
    fs.writeSync(fd, Buffer.alloc(recordBytes / 2, 0xab), 0, recordBytes / 2, 4096 + 8);
    fs.closeSync(fd);

    const second = await open();
    expect(second.status().namespaces).toEqual([{ name: 'ns', lastId: 20 }]);
    expect((await allocate(second, 'ns', 1)).first).toBe(21);
    await second.close();
  });

  it('refuses a table whose both copies of a slot are corrupt', async () => {
    const first = await open();
    await allocate(first, 'ns', 1);
    await allocate(first, 'ns', 1);
    await first.close();
    const fd = fs.openSync(path.join(dataDir, baselineTableFileName), 'r+');
    fs.writeSync(fd, Buffer.alloc(2 * recordBytes, 0xff), 0, 2 * recordBytes, 4096);
    fs.closeSync(fd);
    await expect(open()).rejects.toThrow(/both copies of slot 0 .* at offset 4096 are corrupt/);
  });

  it('rejects bad namespaces and counts with INVALID_ARGUMENT and keeps serving', async () => {
    const node = await open();
    const bad: Array<[string, number]> = [
      ['', 1],
      ['x'.repeat(65), 1],
      ['Upper', 1],
      ['spa ce', 1],
      ['ok', 0],
      ['ok', countMax + 1],
      ['ok', 1.5],
      ['ok', -1],
    ];
    for (const [namespace, count] of bad) {
      const err = await allocateError(node, namespace, count);
      expect(err.kind).toBe('invalid_argument');
    }
    expect((await allocate(node, 'x'.repeat(64), countMax)).count).toBe(countMax);
    await node.close();
  });

  it('locks the data dir against a second process and refuses another node id', async () => {
    const node = await open();
    await expect(open()).rejects.toThrow(/locked by another/);
    await node.close();
    await expect(open('other')).rejects.toThrow(/belongs to node n1, not other/);
  });

  it('refuses new requests once closing, with UNAVAILABLE', async () => {
    const node = await open();
    const inFlight = allocate(node, 'a', 1);
    const closing = node.close();
    const err = await allocateError(node, 'a', 1);
    expect(err.kind).toBe('unavailable');
    expect((await inFlight).first).toBe(1);
    await closing;
  });

  it('answers OverloadedError when the queue is full', async () => {
    const node = await openBaselineNode({
      id: 'n1',
      dataDir,
      logger,
      metrics: createMetrics({ defaults: false }),
      queuedRequestsMax: 2,
    });
    const accepted = [allocate(node, 'a', 1), allocate(node, 'a', 1), allocate(node, 'a', 1)];
    const err = await allocateError(node, 'a', 1);
    expect(err.kind).toBe('resource_exhausted');
    expect((await Promise.all(accepted)).map((r) => r.first)).toEqual([1, 2, 3]);
    await node.close();
  });
});
