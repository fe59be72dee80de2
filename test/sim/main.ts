/**
 * `npm run sim -- --seed S` replays one seed (prints its digest; `--trace` prints every fault
 * and role change); `npm run sim -- --seeds N [--from S]` sweeps N seeds and lists the ones
 * that failed. Exit 0: every seed passed; 1: a seed failed (replay it with --seed); 2: usage.
 */
import { parseArgs } from 'node:util';
import { plantedBugNames, type PlantedBug } from '../../src/core/planted-bugs';
import { runSeed, type SimResult } from './run';

const usage = `usage: npm run sim -- (--seed S [--trace] | --seeds N [--from S]) [--faults K] [--plant BUG]\n  BUG (tests of the simulator itself): ${plantedBugNames.join(', ')}`;

function parse(): {
  seed?: number;
  seeds?: number;
  from: number;
  trace: boolean;
  faults?: number;
  plant?: PlantedBug;
} {
  try {
    const { values } = parseArgs({
      options: {
        seed: { type: 'string' },
        seeds: { type: 'string' },
        from: { type: 'string', default: '1' },
        faults: { type: 'string' },
        trace: { type: 'boolean', default: false },
        plant: { type: 'string' },
        help: { type: 'boolean', default: false },
      },
    });
    if (values.help) {
      console.log(usage);
      process.exit(0);
    }
    const int = (name: string, v: string | undefined, min: number): number | undefined => {
      if (v === undefined) return undefined;
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < min)
        throw new Error(`--${name} must be an integer >= ${min}, got "${v}"`);
      return n;
    };
    const seed = int('seed', values.seed, 0);
    const seeds = int('seeds', values.seeds, 1);
    if ((seed === undefined) === (seeds === undefined))
      throw new Error('give exactly one of --seed and --seeds');
    const plant = values.plant;
    if (plant !== undefined && !(plantedBugNames as readonly string[]).includes(plant)) {
      throw new Error(`--plant: unknown bug "${plant}" (known: ${plantedBugNames.join(', ')})`);
    }
    return {
      seed,
      seeds,
      from: int('from', values.from, 0) as number,
      trace: values.trace,
      faults: int('faults', values.faults, 0),
      plant: plant as PlantedBug | undefined,
    };
  } catch (err) {
    console.error(`sim: ${(err as Error).message}\n${usage}`);
    process.exit(2);
  }
}

function line(r: SimResult): string {
  const kinds = Object.entries(r.faults)
    .map(([k, n]) => `${k}×${n}`)
    .join(' ');
  return `seed ${r.seed}: ${r.violations.length === 0 ? 'PASS' : 'FAIL'} digest ${r.digest}, ${r.operations} ops (${r.acknowledged} ok), ${r.faultCount} faults [${kinds}], ${r.waitsForOperator !== null ? `waits for an operator (${r.waitsForOperator.slice(0, 80)}…)` : `recovered in ${r.recoveredAfterMs ?? '-'} ms`}, ${Math.round(r.virtualMs)} virtual ms`;
}

/** A seed that never settles (a promise nobody resolves, no timer left) would end the process
 *  silently: a real timer keeps it alive, and a seed past this much real time is reported. */
const seedRealTimeMaxMs = 120_000;

function bounded(seed: number, faults: number | undefined, plant?: PlantedBug): Promise<SimResult> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new Error(
            `seed ${seed} did not finish within ${seedRealTimeMaxMs / 1000} s of real time (hung)`,
          ),
        ),
      seedRealTimeMaxMs,
    );
    runSeed({ seed, faults, plant }).then(
      (r) => (clearTimeout(timer), resolve(r)),
      (err: unknown) => (clearTimeout(timer), reject(err)),
    );
  });
}

async function main(): Promise<void> {
  const args = parse();
  if (args.seed !== undefined) {
    const r = await bounded(args.seed, args.faults, args.plant);
    if (args.trace) for (const t of r.trace) console.log(t);
    console.log(line(r));
    for (const v of r.violations) console.log(`  ${v}`);
    process.exit(r.violations.length === 0 ? 0 : 1);
  }
  const started = Date.now();
  const failed: SimResult[] = [];
  const totals = { ops: 0, acked: 0, faults: 0, maxRecoveryMs: 0, operator: 0 };
  const byKind: Record<string, number> = {};
  const operatorKinds: Record<string, number> = {};
  const n = args.seeds as number;
  for (let seed = args.from; seed < args.from + n; seed++) {
    let r: SimResult;
    try {
      r = await bounded(seed, args.faults, args.plant);
    } catch (err) {
      console.log(`seed ${seed}: ERROR ${(err as Error).stack ?? String(err)}`);
      failed.push({ seed, violations: [(err as Error).message] } as SimResult);
      continue;
    }
    totals.ops += r.operations;
    totals.acked += r.acknowledged;
    totals.faults += r.faultCount;
    if (r.waitsForOperator !== null) {
      totals.operator++;
      const kind = r.waitsForOperator.split(':')[0] as string;
      operatorKinds[kind] = (operatorKinds[kind] ?? 0) + 1;
    }
    totals.maxRecoveryMs = Math.max(totals.maxRecoveryMs, r.recoveredAfterMs ?? 0);
    for (const [k, v] of Object.entries(r.faults)) byKind[k] = (byKind[k] ?? 0) + (v ?? 0);
    if (r.violations.length > 0) {
      failed.push(r);
      console.log(line(r));
      for (const v of r.violations) console.log(`  ${v}`);
      // The trace too: a failure that does not replay alone is still diagnosable.
      for (const t of r.trace) console.log(`  trace ${t}`);
    }
    const done = seed - args.from + 1;
    if (done % 100 === 0)
      console.error(
        `sim: ${done}/${n} seeds, ${failed.length} failed, ${Math.round((Date.now() - started) / 1000)} s`,
      );
  }
  const kinds = Object.entries(byKind)
    .sort()
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  console.log(
    `sim: ${n} seeds (${args.from}..${args.from + n - 1}): ${n - failed.length} passed, ${failed.length} failed in ${Math.round((Date.now() - started) / 1000)} s`,
  );
  console.log(
    `sim: ${totals.ops} operations, ${totals.acked} acknowledged, ${totals.faults} faults (${kinds}); slowest recovery ${Math.round(totals.maxRecoveryMs)} virtual ms; ${totals.operator} seed(s) ended waiting for an operator (${
      Object.entries(operatorKinds)
        .sort()
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || 'none'
    })`,
  );
  if (failed.length > 0)
    console.log(
      `sim: failing seeds: ${failed.map((f) => f.seed).join(' ')} (replay: npm run sim -- --seed S --trace)`,
    );
  process.exit(failed.length === 0 ? 0 : 1);
}

void main();
