import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import type { PoolStatus } from '../../engine/report/status.js';
import { callControl } from '../../engine/control/client.js';
import type { ScrubReport } from '../../engine/heal/scrub.js';
import type { OperationProgress } from '../../engine/pool/pool.js';
import { cleanup, CLI, cli, cliJson, makePool, MountedPool, writeSamples } from '../helpers/env.js';

const FILES = Array.from({ length: 4 }, (_, i) => ({ name: `f${i}`, seed: 3300 + i, size: 1_500_000 }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('scrub: bandwidth throttle, pause and resume, and a checkpoint that survives kill -9', async () => {
  const p = await makePool({ redundancy: 'replication:2', disks: 3, extentSize: 64 * 1024 });
  let m: MountedPool | undefined;
  try {
    await writeSamples(p, FILES); // ~12 MiB of fragments in ~96 extents
    const t0 = Date.now();
    const throttled = cliJson<ScrubReport>('scrub', p.pool, '--bandwidth', '4MiB');
    const secs = (Date.now() - t0) / 1000;
    assert.ok(secs >= (throttled.bytesRead / (4 << 20)) * 0.8, `scrub of ${throttled.bytesRead} bytes at 4 MiB/s took only ${secs}s`);

    m = await MountedPool.start(p.pool, p.mnt);
    // Long operations run by the daemon stream their progress to the caller.
    const seen: OperationProgress[] = [];
    const viaSocket = (await callControl(p.pool, 'scrub', {}, (pr) => seen.push(pr))) as ScrubReport;
    assert.ok(seen.length >= 2, `only ${seen.length} progress line(s)`);
    assert.equal(seen[seen.length - 1].extentsDone, viaSocket.extents.scanned);
    assert.equal(seen[seen.length - 1].extentsTotal, viaSocket.extents.scanned);
    const child = spawn(process.execPath, [CLI, 'scrub', p.pool, '--bandwidth', '2MiB', '--json'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    await sleep(1500);
    assert.equal(cli('scrub', p.pool, '--pause').code, 0);
    await sleep(300);
    const a = cliJson<PoolStatus>('status', p.pool).operation;
    await sleep(1000);
    const b = cliJson<PoolStatus>('status', p.pool).operation;
    assert.ok(a && b && a.extentsDone > 0, 'a scrub should be running');
    assert.equal(b.extentsDone, a.extentsDone, 'a paused scrub must not advance');
    assert.match(cli('scrub', p.pool).stderr, /already running/);
    assert.equal(cli('scrub', p.pool, '--resume').code, 0);
    await new Promise((r) => child.once('exit', r));
    const finished = JSON.parse(out) as ScrubReport;
    assert.equal(finished.extents.scanned, throttled.extents.scanned);

    // Interrupt a slow scrub past its first checkpoint; the next scrub resumes the same run.
    const slow = spawn(process.execPath, [CLI, 'scrub', p.pool, '--bandwidth', '1MiB'], { stdio: 'ignore' });
    await sleep(3500);
    await m.kill();
    slow.kill('SIGKILL');
    m = await MountedPool.start(p.pool, p.mnt);
    const resumed = cliJson<ScrubReport>('scrub', p.pool);
    assert.equal(resumed.extents.scanned, throttled.extents.scanned, 'the resumed run covers every extent once');
    assert.ok(
      Date.parse(resumed.startedAt) < Date.parse(resumed.finishedAt) - 3000,
      "the resumed report keeps the interrupted run's start",
    );
    const fresh = cliJson<ScrubReport>('scrub', p.pool);
    assert.ok(Date.parse(fresh.startedAt) > Date.parse(resumed.finishedAt) - 1, 'a completed scrub leaves no checkpoint behind');
  } finally {
    await m?.stop();
    cleanup(p.root);
  }
});
