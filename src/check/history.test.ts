import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { modelHistory } from '../testing/history-model';
import { seededRandom } from '../testing/random';
import {
  checkHistory,
  formatHistoryLine,
  type HistoryOp,
  type Outcome,
  parseHistoryLine,
  readHistory,
  readHistoryFile,
  type Violation,
} from './history';

function op(
  ns: string,
  first: bigint | number | null,
  count: number,
  invokeMs: number,
  completeMs: number,
  outcome: Outcome = 'ok',
): HistoryOp {
  return {
    ns,
    first: first === null ? null : BigInt(first),
    count,
    invokeMs,
    completeMs,
    outcome,
  };
}

const kinds = (violations: Violation[]) => violations.map((v) => v.kind);

describe('histories that must pass', () => {
  it('accepts concurrent operations in either order, gaps, failures and unknowns', () => {
    const ops = [
      op('x', 3, 1, 1, 4), // concurrent with the next: may take the higher IDs
      op('x', 1, 2, 2, 3),
      op('x', null, 5, 5, 6, 'fail'),
      op('x', null, 5, 5, 9, 'unknown'),
      op('x', 10, 5, 7, 8), // a gap (4..9) after failures is allowed
      op('y', 1, 1, 1, 2),
    ];
    const report = checkHistory(ops);
    expect(report).toMatchObject({
      ok: true,
      operations: 6,
      acknowledged: 4,
      acknowledgedIds: 9n,
      failed: 1,
      unknown: 1,
      namespaces: 2,
      violationsTotal: 0,
    });
    expect(report.violations).toEqual([]);
  });

  it('treats equal times as concurrent: completed at 5, invoked at 5 may take lower IDs', () => {
    expect(checkHistory([op('x', 10, 1, 1, 5), op('x', 7, 1, 5, 6)]).ok).toBe(true);
    // One tick later A completed strictly before B was invoked: now it is a violation.
    expect(kinds(checkHistory([op('x', 10, 1, 1, 5), op('x', 7, 1, 6, 7)]).violations)).toEqual([
      'backwards',
    ]);
  });

  it('accepts operations that all share one invoke and one completion time, in any ID order', () => {
    const ops = [5, 1, 4, 2, 3].map((first) => op('x', first, 1, 10, 10));
    expect(checkHistory(ops).ok).toBe(true);
  });

  it('never constrains with fail or unknown operations, even when they name a range', () => {
    const ops = [
      op('x', 5, 10, 1, 2, 'unknown'), // a range here is ignored: it was never acknowledged
      op('x', 5, 1, 3, 4),
      op('x', 1, 1, 5, 6, 'fail'),
      op('x', 6, 1, 7, 8),
    ];
    expect(checkHistory(ops)).toMatchObject({ ok: true, acknowledged: 2, unknown: 1, failed: 1 });
  });

  it('keeps IDs past 2^53 exact (as numbers, 2^53 and 2^53 + 1 would be one ID)', () => {
    const big = 2n ** 53n;
    expect(Number(big) === Number(big + 1n)).toBe(true);
    const ops = [op('x', big, 1, 1, 2), op('x', big + 1n, 1, 3, 4), op('x', 2n ** 64n, 3, 5, 6)];
    const report = checkHistory(ops);
    expect(report.ok).toBe(true);
    expect(report.acknowledgedIds).toBe(5n);
  });

  it('keeps many namespaces independent: the same IDs in each are fine', () => {
    const ops: HistoryOp[] = [];
    for (let n = 0; n < 1000; n++) {
      ops.push(op(`ns${n}`, 1, 2, n, n + 1), op(`ns${n}`, 3, 1, n + 2, n + 3));
    }
    expect(checkHistory(ops)).toMatchObject({ ok: true, namespaces: 1000, acknowledged: 2000 });
  });
});

describe('histories that must fail', () => {
  it('names both operations of a duplicate, the one invoked first as a', () => {
    const first = op('x', 1, 5, 3, 4);
    const second = op('x', 5, 1, 1, 6); // invoked earlier, concurrent: only the ID is shared
    const report = checkHistory([first, second]);
    expect(report.ok).toBe(false);
    expect(report.violations).toEqual([
      {
        kind: 'duplicate',
        message:
          'namespace "x": ID 5 acknowledged twice: to 5 (invoked at 1, completed at 6) and to 1..5 (invoked at 3, completed at 4)',
        a: second,
        b: first,
      },
    ]);
  });

  it('reports duplicates by their lowest shared ID, whatever the input order', () => {
    const ops = [
      op('x', 20, 5, 1, 9), // 20..24
      op('x', 23, 5, 1, 9), // 23..27: shares 23..24
      op('x', 5, 5, 1, 9), // 5..9
      op('x', 9, 1, 1, 9), // shares 9
    ];
    const report = checkHistory(ops);
    expect(report.violations.map((v) => v.message.split(':')[1])).toEqual([
      ' ID 9 acknowledged twice',
      ' IDs 23..24 acknowledged twice',
    ]);
    expect(checkHistory([...ops].reverse()).violations[0]?.message).toContain('ID 9 ');
  });

  it('reports a counter that went back, naming the operation that held the highest ID', () => {
    const low = op('x', 3, 1, 1, 2);
    const high = op('x', 10, 1, 3, 4); // completed before b was invoked: holds H = 10
    const b = op('x', 7, 2, 5, 6); // 7..8, wholly below 10, and no ID shared
    const report = checkHistory([low, high, b]);
    expect(report.violations).toEqual([
      {
        kind: 'backwards',
        message:
          'namespace "x": the counter went back: 7..8 (invoked at 5, completed at 6) lies at or below 10, acknowledged to 10 (invoked at 3, completed at 4) before it was invoked',
        a: high,
        b,
      },
    ]);
  });

  it('reports a range that straddles an earlier acknowledgement as real-time (and a duplicate)', () => {
    const a = op('x', 1, 10, 1, 2);
    const b = op('x', 8, 5, 3, 4); // 8..12 over 1..10
    const report = checkHistory([a, b]);
    expect(kinds(report.violations)).toEqual(['duplicate', 'real-time']);
    expect(report.violations[1]).toMatchObject({ a, b });
    expect(report.violations[1]?.message).toMatch(/real-time order broken: 8\.\.12 .* above 10,/);
  });

  it('reports malformed operations and checks the rest', () => {
    const ops = [
      op('x', 1, 0, 1, 2),
      op('x', 1, 1, 5, 4),
      op('x', null, 1, 1, 2),
      op('x', 0, 1, 1, 2),
      op('x', 1, 1, 1, Infinity),
      { ...op('x', 1, 1, 1, 2), outcome: 'maybe' as Outcome },
      op('', 1, 1, 1, 2),
      op('x', 1, 1, 1, 2),
    ];
    const report = checkHistory(ops);
    expect(report.violations.map((v) => [v.kind, v.message, v.a])).toEqual([
      ['malformed', 'operation 1 is malformed: count must be an integer >= 1 (got 0)', ops[0]],
      ['malformed', 'operation 2 is malformed: completeMs 4 is before invokeMs 5', ops[1]],
      [
        'malformed',
        'operation 3 is malformed: an ok operation needs first (the first ID it was given)',
        ops[2],
      ],
      [
        'malformed',
        'operation 4 is malformed: first must be >= 1 for an ok operation (got 0)',
        ops[3],
      ],
      [
        'malformed',
        'operation 5 is malformed: completeMs must be a finite number (got Infinity)',
        ops[4],
      ],
      [
        'malformed',
        'operation 6 is malformed: outcome must be "ok", "fail" or "unknown" (got "maybe")',
        ops[5],
      ],
      ['malformed', 'operation 7 is malformed: ns must be a non-empty string', ops[6]],
    ]);
    expect(report).toMatchObject({ ok: false, operations: 8, acknowledged: 1, namespaces: 1 });
  });

  it('names the violating namespace and reports namespaces in name order', () => {
    const ops: HistoryOp[] = [];
    for (let n = 0; n < 500; n++) ops.push(op(`ns${n}`, 1, 1, 1, 2), op(`ns${n}`, 2, 1, 3, 4));
    ops.push(op('ns7', 1, 1, 5, 6), op('ns42', 2, 1, 5, 6));
    const report = checkHistory(ops);
    expect(report.violations.map((v) => [v.kind, v.message.split(':')[0]])).toEqual([
      ['duplicate', 'namespace "ns42"'],
      ['backwards', 'namespace "ns42"'],
      ['duplicate', 'namespace "ns7"'],
      ['backwards', 'namespace "ns7"'],
    ]);
  });

  it('reports order violations by invocation time, including among tied operations', () => {
    const ops = [
      op('x', 100, 1, 1, 2),
      op('x', 60, 1, 9, 10),
      op('x', 50, 1, 5, 6),
      op('x', 40, 1, 5, 6),
    ];
    const report = checkHistory(ops);
    expect(report.violations.map((v) => v.b)).toEqual([ops[2], ops[3], ops[1]]);
    expect(new Set(report.violations.map((v) => v.a))).toEqual(new Set([ops[0]]));
  });

  it('keeps the first maxViolations and counts them all', () => {
    const ops = Array.from({ length: 100 }, (_, i) => op('x', 1, 1, i * 2, i * 2 + 1));
    const report = checkHistory(ops, { maxViolations: 3 });
    expect(report.violations).toHaveLength(3);
    expect(report.violationsTotal).toBe(99 * 2); // each later op: a duplicate and backwards
  });
});

/** The checker's verdict by brute force over every pair (O(n²)). */
function bruteForce(ops: HistoryOp[]) {
  const acked = ops.filter((o) => o.outcome === 'ok');
  const last = (o: HistoryOp) => (o.first as bigint) + BigInt(o.count) - 1n;
  const lowestShared = new Map<string, bigint>(); // per namespace
  const order = new Map<HistoryOp, string>();
  for (const b of acked) {
    let high = 0n;
    for (const a of acked) {
      if (a === b || a.ns !== b.ns) continue;
      const shared = (a.first as bigint) > (b.first as bigint) ? a.first : b.first;
      const overlap = (a.first as bigint) <= last(b) && (b.first as bigint) <= last(a);
      const lowest = lowestShared.get(b.ns);
      if (overlap && (lowest === undefined || (shared as bigint) < lowest)) {
        lowestShared.set(b.ns, shared as bigint);
      }
      if (a.completeMs < b.invokeMs && last(a) > high) high = last(a);
    }
    if ((b.first as bigint) <= high) order.set(b, last(b) <= high ? 'backwards' : 'real-time');
  }
  return { lowestShared, order };
}

describe('randomized', () => {
  it('agrees with a brute-force check on small random histories', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const rand = seededRandom(seed);
      const ops = Array.from({ length: 2 + Math.floor(rand() * 12) }, () => {
        const invokeMs = Math.floor(rand() * 10);
        const outcome = rand() < 0.8 ? 'ok' : 'unknown';
        const first = outcome === 'ok' ? 1 + Math.floor(rand() * 40) : null;
        const ns = rand() < 0.7 ? 'x' : 'y';
        return op(
          ns,
          first,
          1 + Math.floor(rand() * 4),
          invokeMs,
          invokeMs + Math.floor(rand() * 4),
          outcome,
        );
      });
      const expected = bruteForce(ops);
      const report = checkHistory(ops, { maxViolations: 1000 });
      const dups = report.violations.filter((v) => v.kind === 'duplicate');
      const order = report.violations.filter((v) => v.kind !== 'duplicate');
      // The first duplicate of each namespace names its lowest shared ID.
      const firstDup = new Map<string, string>();
      for (const v of dups) {
        const ns = (v.a as HistoryOp).ns;
        if (!firstDup.has(ns)) firstDup.set(ns, v.message);
      }
      expect([...firstDup.keys()].sort(), `seed ${seed}`).toEqual(
        [...expected.lowestShared.keys()].sort(),
      );
      for (const [ns, id] of expected.lowestShared) {
        expect(firstDup.get(ns), `seed ${seed}`).toMatch(new RegExp(`IDs? ${id}(\\.\\.|\\s)`));
      }
      expect(new Map(order.map((v) => [v.b, v.kind])), `seed ${seed}`).toEqual(expected.order);
    }
  });

  it('accepts valid histories built from a model counter', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const ops = modelHistory(seededRandom(seed), { operations: 2000, namespaces: 5 });
      const report = checkHistory(ops);
      expect(report.violations, `seed ${seed}`).toEqual([]);
      expect(report.acknowledged).toBeGreaterThan(1800);
    }
  });

  type Plant = (ops: HistoryOp[], rand: () => number) => { kind: string; planted: HistoryOp };

  const pick = (ops: HistoryOp[], rand: () => number, ok: (o: HistoryOp) => boolean) => {
    const candidates = ops.filter(ok);
    return candidates[Math.floor(rand() * candidates.length)] as HistoryOp;
  };
  const acked = (o: HistoryOp) => o.outcome === 'ok';
  const last = (o: HistoryOp) => (o.first as bigint) + BigInt(o.count) - 1n;
  /** The highest ID acknowledged before b was invoked (0 when none). */
  const highBefore = (ops: HistoryOp[], b: HistoryOp) =>
    ops
      .filter((a) => acked(a) && a.ns === b.ns && a.completeMs < b.invokeMs)
      .reduce((h, a) => (last(a) > h ? last(a) : h), 0n);

  const plants: Record<string, Plant> = {
    duplicate: (ops, rand) => {
      const a = pick(ops, rand, acked);
      const b = pick(ops, rand, (o) => acked(o) && o !== a && o.ns === a.ns);
      b.first = a.first; // b's own IDs become a gap; a's first ID is now given twice
      return { kind: 'duplicate', planted: b };
    },
    backwards: (ops, rand) => {
      const b = pick(ops, rand, (o) => acked(o) && highBefore(ops, o) > 1n);
      b.first = highBefore(ops, b) - 1n;
      b.count = 1;
      return { kind: 'backwards', planted: b };
    },
    'real-time': (ops, rand) => {
      const b = pick(ops, rand, (o) => acked(o) && highBefore(ops, o) > 0n);
      const end = last(b);
      b.first = highBefore(ops, b);
      b.count = Number(end - b.first + 1n);
      return { kind: 'real-time', planted: b };
    },
    malformed: (ops, rand) => {
      const b = pick(ops, rand, () => true);
      b.completeMs = b.invokeMs - 1;
      return { kind: 'malformed', planted: b };
    },
  };

  for (const [name, plant] of Object.entries(plants)) {
    it(`finds and names a planted ${name} violation`, () => {
      for (let seed = 1; seed <= 25; seed++) {
        const rand = seededRandom(seed * 7919);
        const ops = modelHistory(rand, { operations: 3000, namespaces: 3 });
        const { kind, planted } = plant(ops, rand);
        const report = checkHistory(ops, { maxViolations: 1000 });
        const found = report.violations.filter((v) => v.kind === kind);
        expect(found.length, `seed ${seed}`).toBeGreaterThan(0);
        expect(
          found.some((v) => v.a === planted || v.b === planted),
          `seed ${seed}: ${found[0]?.message}`,
        ).toBe(true);
        // Nothing else is flagged: every violation involves the planted operation.
        for (const v of report.violations) {
          expect([v.a, v.b], `seed ${seed}: ${v.message}`).toContain(planted);
        }
      }
    });
  }

  it('names the acknowledging operation of a planted backwards step as a', () => {
    const rand = seededRandom(99);
    const ops = modelHistory(rand, { operations: 3000, namespaces: 2, startId: 2n ** 62n });
    const { planted } = plants.backwards?.(ops, rand) as { planted: HistoryOp };
    const v = checkHistory(ops).violations.find((x) => x.kind === 'backwards') as Violation;
    expect(v.b).toBe(planted);
    expect((v.a as HistoryOp).completeMs).toBeLessThan(planted.invokeMs);
    expect(last(v.a as HistoryOp)).toBe(highBefore(ops, planted));
  });
});

describe('history file format', () => {
  const line = (fields: Record<string, unknown>) =>
    JSON.stringify({
      ns: 'x',
      first: '5',
      count: 2,
      invokeMs: 1,
      completeMs: 2,
      outcome: 'ok',
      ...fields,
    });

  it('round-trips an operation, first as a decimal string (exact past 2^53)', () => {
    const o = op('orders', 2n ** 64n + 1n, 3, 1.5, 2, 'ok');
    const text = formatHistoryLine(o);
    expect(text).toBe(
      '{"ns":"orders","first":"18446744073709551617","count":3,"invokeMs":1.5,"completeMs":2,"outcome":"ok"}',
    );
    expect(parseHistoryLine(text, 1)).toEqual(o);
    const u = op('orders', null, 1, 3, 4, 'unknown');
    expect(formatHistoryLine(u)).toContain('"first":null');
    expect(parseHistoryLine(formatHistoryLine(u), 1)).toEqual(u);
  });

  it('accepts fail and unknown lines without first, and ignores fields it does not know', () => {
    const parsed = parseHistoryLine(line({ first: undefined, outcome: 'fail', node: 'a' }), 3);
    expect(parsed).toEqual(op('x', null, 2, 1, 2, 'fail'));
  });

  it.each([
    ['{"ns":', /^history: line 7: not JSON/],
    ['[1,2]', /^history: line 7: expected a JSON object/],
    [line({ count: 0 }), /^history: line 7: count must be an integer >= 1 \(got 0\)$/],
    [line({ count: 1.5 }), /count must be an integer >= 1/],
    [line({ count: '2' }), /count must be a JSON number \(got "2"\)/],
    [line({ first: '0' }), /first must be >= 1 for an ok operation \(got 0\)/],
    [line({ first: null }), /an ok operation needs first/],
    [line({ first: 5 }), /first must be a decimal string such as "5", not a JSON number/],
    [line({ first: '-1' }), /first must be a decimal string of digits \(got "-1"\)/],
    [line({ first: '05' }), /first must be a decimal string/],
    [line({ first: '1e3' }), /first must be a decimal string/],
    [line({ first: ' 5' }), /first must be a decimal string/],
    [line({ completeMs: 0 }), /completeMs 0 is before invokeMs 1/],
    [line({ invokeMs: undefined }), /invokeMs must be a JSON number \(got nothing\)/],
    [line({ outcome: 'maybe' }), /outcome must be "ok", "fail" or "unknown" \(got "maybe"\)/],
    [line({ outcome: 'fail', first: 'x' }), /first must be a decimal string/],
    [line({ ns: '' }), /ns must be a non-empty string/],
    [line({ ns: 3 }), /ns must be a string \(got 3\)/],
  ])('rejects %s naming the line', (text, message) => {
    expect(() => parseHistoryLine(text, 7)).toThrow(message);
  });

  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
  });
  function tempFile(text: string): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-history-'));
    dirs.push(dir);
    const file = path.join(dir, 'history.jsonl');
    fs.writeFileSync(file, text);
    return file;
  }

  it('reads a file with blank lines and CRLF, keeping each operation line number', async () => {
    const text = `${line({})}\n\n${line({ first: '7' })}\r\n   \n${line({ first: '9' })}`;
    const file = tempFile(text);
    const ops = await readHistoryFile(file);
    expect(ops.map((o) => o.first)).toEqual([5n, 7n, 9n]);
    const read = await readHistory(fs.createReadStream(file), file);
    expect(read.lineNumbers).toEqual([1, 3, 5]);
  });

  it('names the file and line of a bad line, and a file it cannot read', async () => {
    const file = tempFile(`${line({})}\n${line({})}\n${line({ count: -1 })}\n`);
    await expect(readHistoryFile(file)).rejects.toThrow(
      `history: ${file} line 3: count must be an integer >= 1 (got -1)`,
    );
    await expect(readHistoryFile(path.join(path.dirname(file), 'none'))).rejects.toThrow(
      /^history: cannot read .*none: ENOENT/,
    );
  });

  it('reads from any stream (stdin)', async () => {
    const read = await readHistory(
      Readable.from([`${line({})}\n${line({ first: '9' })}`]),
      'stdin',
    );
    expect(read.ops).toHaveLength(2);
    await expect(readHistory(Readable.from(['{}\n']), 'stdin')).rejects.toThrow(
      /^history: stdin line 1: ns must be a string \(got nothing\)$/,
    );
  });
});
