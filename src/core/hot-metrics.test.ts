import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { HotCounter, HotHistogram } from './hot-metrics';

const buckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

/** A deterministic stream of values: some on bucket bounds, some above the last. */
function values(n: number): number[] {
  let x = 12345;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const r = x / 2 ** 31;
    if (i % 17 === 0) out.push(buckets[i % buckets.length] as number);
    else if (i % 29 === 0) out.push(2 + r);
    else out.push(r * r * 0.05);
  }
  return out;
}

describe('hot metrics', () => {
  it('export the same /metrics text as prom-client for the same observations', async () => {
    const hot = new Registry();
    const prom = new Registry();
    const desc = { name: 'x_requests_total', help: 'h', labelNames: ['method', 'code'] as const };
    const hotReq = new HotCounter({ ...desc, registers: [hot] });
    const promReq = new Counter({ ...desc, labelNames: [...desc.labelNames], registers: [prom] });
    const hotIds = new HotCounter({ name: 'x_ids_total', help: 'h', registers: [hot] });
    const promIds = new Counter({ name: 'x_ids_total', help: 'h', registers: [prom] });
    const hdesc = { name: 'x_seconds', help: 'h', buckets };
    const hotDur = new HotHistogram({
      ...hdesc,
      labelNames: ['method'] as const,
      registers: [hot],
    });
    const promDur = new Histogram({ ...hdesc, labelNames: ['method'], registers: [prom] });
    const hotPlain = new HotHistogram({ name: 'x_plain', help: 'h', buckets, registers: [hot] });
    const promPlain = new Histogram({ name: 'x_plain', help: 'h', buckets, registers: [prom] });

    // Before anything is observed: unlabelled metrics already read 0, labelled ones are absent.
    expect(await hot.metrics()).toBe(await prom.metrics());

    const vs = values(5000);
    vs.forEach((v, i) => {
      const method = i % 3 === 0 ? 'Allocate' : 'AllocateStream';
      const code = i % 11 === 0 ? 'INVALID_ARGUMENT' : 'OK';
      hotReq.labels(method, code).inc();
      promReq.labels(method, code).inc();
      hotIds.labels().inc(i % 5);
      promIds.inc(i % 5);
      hotDur.labels(method).observe(v);
      promDur.labels(method).observe(v);
      hotPlain.labels().observe(v);
      promPlain.observe(v);
    });
    const text = await hot.metrics();
    expect(text).toBe(await prom.metrics());
    expect(text).toContain('x_seconds_bucket{le="0.001",method="Allocate"}');
    // JSON too, apart from prom-client's exemplar slots (null/undefined: exemplars are off).
    const withoutExemplars = (json: unknown): unknown =>
      JSON.parse(JSON.stringify(json, (k, v: unknown) => (k === 'exemplar' ? undefined : v)));
    expect(withoutExemplars(await hot.getMetricsAsJSON())).toEqual(
      withoutExemplars(await prom.getMetricsAsJSON()),
    );

    hot.resetMetrics();
    prom.resetMetrics();
    expect(await hot.getSingleMetricAsString('x_requests_total')).toBe(
      await prom.getSingleMetricAsString('x_requests_total'),
    );
  });

  it('refuses a wrong number of label values and a negative increment', () => {
    const r = new Registry();
    const c = new HotCounter({ name: 'c', help: 'h', labelNames: ['a', 'b'], registers: [r] });
    expect(() => c.labels('only-one')).toThrow(/expected 2 label values, got 1/);
    expect(() => c.labels('x', 'y').inc(-1)).toThrow(/must be >= 0/);
    expect(() => c.labels('x', 'y').inc(Number.NaN)).toThrow(/must be >= 0/);
    expect(
      () => new HotHistogram({ name: 'h', help: 'h', buckets: [1, 1], registers: [r] }),
    ).toThrow(/duplicate/);
  });

  it('resolves a label set to one child', () => {
    const r = new Registry();
    const c = new HotCounter({ name: 'c', help: 'h', labelNames: ['a'], registers: [r] });
    expect(c.labels('x')).toBe(c.labels('x'));
    expect(c.labels('x')).not.toBe(c.labels('y'));
  });
});
