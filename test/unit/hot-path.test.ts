import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import { HotCounter, HotHistogram } from '../../engine/observability/hot-metrics.js';
import { copyBytes } from '../../engine/util/bytes.js';

const BUCKETS = [0.001, 0.01, 0.1, 1];

test('hot histogram and counter render exactly as prom-client renders the same observations', async () => {
  const ours = new Registry();
  const theirs = new Registry();
  const hot = new HotHistogram('op_seconds', 'Latency.', ['pool', 'operation'], BUCKETS, ours);
  const ref = new Histogram({
    name: 'op_seconds',
    help: 'Latency.',
    labelNames: ['pool', 'operation'],
    buckets: BUCKETS,
    registers: [theirs],
  });
  const hotCount = new HotCounter('ops_total', 'Operations.', ['pool', 'operation', 'result'], ours);
  const refCount = new Counter({
    name: 'ops_total',
    help: 'Operations.',
    labelNames: ['pool', 'operation', 'result'],
    registers: [theirs],
  });
  const values = [0, 0.0005, 0.001, 0.0011, 0.05, 0.1, 0.7, 1, 3, 42];
  for (const [i, v] of values.entries()) {
    const labels = { pool: 'p', operation: i % 3 === 0 ? 'write' : 'read' };
    hot.with(labels).observe(v);
    ref.observe(labels, v);
    const result = i === 4 ? 'EIO' : 'ok';
    hotCount.with({ ...labels, result }).inc();
    refCount.inc({ ...labels, result });
  }
  const sortLines = (s: string) => s.split('\n').filter(Boolean).sort();
  assert.deepEqual(sortLines(await ours.metrics()), sortLines(await theirs.metrics()));
  const json = (await ours.getMetricsAsJSON()).find((m) => m.name === 'ops_total');
  assert.equal(
    json?.values.reduce((a, v) => a + v.value, 0),
    values.length,
  );
  const kept = hot.with({ pool: 'p', operation: 'read' });
  ours.resetMetrics();
  assert.match(await ours.metrics(), /op_seconds_count\{pool="p",operation="read"\} 0\n/);
  assert.match(await ours.metrics(), /ops_total\{pool="p",operation="read",result="ok"\} 0\n/);
  kept.observe(0.002);
  assert.match(
    await ours.metrics(),
    /op_seconds_count\{pool="p",operation="read"\} 1\n/,
    'a series resolved before the reset still records',
  );
});

test('copyBytes copies the asked range between shared and ordinary memory, and nothing more', () => {
  const shared = Buffer.from(new SharedArrayBuffer(1 << 16));
  const src = randomBytes(1 << 16);
  assert.equal(copyBytes(src, 100, 5100, shared, 7), 5000);
  assert.ok(shared.subarray(7, 5007).equals(src.subarray(100, 5100)));
  assert.equal(shared[6], 0);
  assert.equal(shared[5007], 0);
  const dest = Buffer.alloc(64);
  assert.equal(copyBytes(shared, 7, 5007, dest, 60), 4, 'clipped at the end of the destination');
  assert.ok(dest.subarray(60).equals(src.subarray(100, 104)));
  assert.equal(copyBytes(src, 10, 10, dest, 0), 0, 'an empty range copies nothing (Buffer#fill would throw)');
});
