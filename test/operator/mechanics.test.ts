import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setCondition } from '../../operator/src/kube/conditions.js';
import { WorkQueue } from '../../operator/src/kube/queue.js';

test('conditions: lastTransitionTime moves only when the status flips; reason, message and generation follow', () => {
  const t0 = new Date('2026-01-01T00:00:00Z');
  const t1 = new Date('2026-01-01T00:05:00Z');
  const t2 = new Date('2026-01-01T00:09:00Z');
  let c = setCondition([], { type: 'Ready', status: 'True', reason: 'PoolServing', message: 'a', observedGeneration: 1 }, t0);
  c = setCondition(c, { type: 'Ready', status: 'True', reason: 'RemovalNotConfirmed', message: 'b', observedGeneration: 2 }, t1);
  assert.deepEqual(c, [
    {
      type: 'Ready',
      status: 'True',
      reason: 'RemovalNotConfirmed',
      message: 'b',
      observedGeneration: 2,
      lastTransitionTime: '2026-01-01T00:00:00Z',
    },
  ]);
  c = setCondition(c, { type: 'Ready', status: 'False', reason: 'PoolCritical', message: 'c', observedGeneration: 2 }, t2);
  assert.equal(c[0].lastTransitionTime, '2026-01-01T00:09:00Z');
  c = setCondition(c, { type: 'Degraded', status: 'False', reason: 'AllHealthy', message: '', observedGeneration: 2 }, t2);
  assert.deepEqual(
    c.map((x) => x.type),
    ['Ready', 'Degraded'],
  );
});

test('work queue: a key is queued once, never runs twice at once, is re-run when added while running, and backs off when it fails', async () => {
  const q = new WorkQueue({ baseDelayMs: 20, maxDelayMs: 200, ratePerSecond: 1000, burst: 1000 });
  const runs: string[] = [];
  let active = 0;
  let maxActive = 0;
  let failures = 0;
  const retries: number[] = [];
  const done = q.run(
    4,
    async (key) => {
      active++;
      maxActive = Math.max(maxActive, active);
      runs.push(key);
      await new Promise((r) => setTimeout(r, 30));
      active--;
      if (key === 'flaky' && failures < 3) {
        failures++;
        throw new Error('not yet');
      }
    },
    (_key, _err, retryInMs) => retries.push(retryInMs),
  );
  for (let i = 0; i < 5; i++) q.add('a'); // five adds, one run
  await new Promise((r) => setTimeout(r, 10));
  q.add('a'); // added while running: runs once more afterwards, not concurrently
  q.add('flaky');
  await new Promise((r) => setTimeout(r, 600));
  q.stop();
  await done;
  assert.equal(runs.filter((k) => k === 'a').length, 2);
  assert.equal(runs.filter((k) => k === 'flaky').length, 4, 'three failures, then success');
  assert.deepEqual(retries, [20, 40, 80], 'per-key exponential backoff');
  assert.ok(maxActive <= 2, `one key ran concurrently with itself (max ${maxActive} active for two keys)`);
});

test('work queue: the global token bucket caps the rate', async () => {
  const q = new WorkQueue({ ratePerSecond: 20, burst: 2 });
  let n = 0;
  const done = q.run(
    4,
    async () => {
      n++;
    },
    () => undefined,
  );
  for (let i = 0; i < 50; i++) q.add(`k${i}`);
  await new Promise((r) => setTimeout(r, 500));
  q.stop();
  await done;
  // 2 at once from the burst, then 20/s: about 12 in half a second, never all 50.
  assert.ok(n >= 5 && n <= 16, `${n} keys in 0.5 s at 20/s`);
});
