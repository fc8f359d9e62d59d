import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { PoolStatus } from '../../engine/report/status.js';
import { CLI, cleanup, cli, cliJson, eventually, freePort, httpGet, makePool, metricValue, MountedPool } from '../helpers/env.js';

test('configuration reaches the mounted engine: max file size, open-file cap, audit log lines', async () => {
  const p = await makePool({ redundancy: 'replication:2', disks: 2, extentSize: 64 * 1024 });
  const cfg = path.join(p.root, 'c.yaml');
  fs.writeFileSync(
    cfg,
    'storage:\n  max_file_size: 1MiB\nsecurity:\n  max_open_files: 3\n  audit_logging: true\nreliability:\n  auto_scrub: false\n',
  );
  let m: MountedPool | undefined;
  const fds: number[] = [];
  try {
    m = await MountedPool.start(p.pool, p.mnt, ['--config', cfg, '--log-format', 'json']);
    const big = path.join(p.mnt, 'big');
    fs.writeFileSync(big, Buffer.alloc(1 << 20, 1));
    assert.throws(
      () => fs.appendFileSync(big, 'x'),
      (err: NodeJS.ErrnoException) => err.code === 'EFBIG',
    );
    assert.throws(
      () => fs.truncateSync(big, (1 << 20) + 1),
      (err: NodeJS.ErrnoException) => err.code === 'EFBIG',
    );
    assert.equal(fs.statSync(big).size, 1 << 20);
    for (let i = 0; i < 3; i++) fds.push(fs.openSync(path.join(p.mnt, `f${i}`), 'w'));
    assert.throws(
      () => fs.openSync(path.join(p.mnt, 'f3'), 'w'),
      (err: NodeJS.ErrnoException) => err.code === 'EMFILE',
    );
    fs.closeSync(fds.pop() as number);
    fds.push(fs.openSync(path.join(p.mnt, 'f3'), 'w'));
    fs.mkdirSync(path.join(p.mnt, 'dir'));
    fs.renameSync(path.join(p.mnt, 'big'), path.join(p.mnt, 'dir/big'));
    const audit = await eventually('audit lines', () => {
      const lines = (m?.log() ?? '')
        .split('\n')
        .filter((l) => l.includes('"component":"audit"'))
        .map((l) => JSON.parse(l) as { message: string; context: Record<string, unknown> });
      return lines.some((l) => l.context.op === 'rename') ? lines : undefined;
    });
    assert.ok(audit.some((l) => l.context.op === 'mkdir' && l.context.path === '/dir'));
    assert.ok(audit.some((l) => l.context.op === 'rename' && l.context.path === '/big' && l.context.to === '/dir/big'));
    assert.ok(audit.some((l) => l.context.op === 'create' && l.context.path === '/f0'));
  } finally {
    for (const fd of fds) fs.closeSync(fd);
    await m?.stop();
    cleanup(p.root);
  }
});

test('serve on an unmounted pool hosts it: endpoints answer, and CLI commands go through it', async () => {
  const p = await makePool({ redundancy: 'replication:2', disks: 2, extentSize: 64 * 1024 });
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, 'serve', p.pool, '--listen', `127.0.0.1:${port}`], { stdio: 'ignore' });
  try {
    const ready = await eventually('serve to be ready', async () => {
      const r = await httpGet(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
      return r?.status === 200 ? r : undefined;
    });
    assert.match(ready.body, /pool pool open/);
    assert.equal((await httpGet(`http://127.0.0.1:${port}/health`)).status, 200);
    const text = (await httpGet(`http://127.0.0.1:${port}/metrics`)).body;
    assert.equal(metricValue(text, 'dynamicfs_pools'), 1);
    assert.equal(metricValue(text, 'dynamicfs_extents', { pool: 'pool', health: 'healthy' }), 0);
    const status = cliJson<PoolStatus>('status', p.pool);
    assert.equal(status.mounted?.pid, child.pid, 'status did not come from the serving process');
    assert.equal(status.mounted?.mountpoint, null);
    assert.equal(cli('scrub', p.pool).code, 0);
    assert.equal(metricValue((await httpGet(`http://127.0.0.1:${port}/metrics`)).body, 'dynamicfs_scrub_runs_total', { pool: 'pool' }), 1);
    assert.equal((await httpGet(`http://127.0.0.1:${port}/nope`)).status, 404);
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
    cleanup(p.root);
  }
});
