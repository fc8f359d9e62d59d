import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { PoolStatus } from '../../engine/report/status.js';
import { callControl } from '../../engine/control/client.js';
import { isMounted, lazyUnmount } from '../../engine/fuse/mount.js';
import { POOL_LOCK, POOL_SOCKET } from '../../engine/pool/layout.js';
import { cleanup, CLI, cli, makePool } from '../helpers/env.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a command sent while the daemon is still starting waits for its control socket instead of failing', async () => {
  const p = await makePool({ redundancy: 'replication:1', disks: 2 });
  const daemon = spawn(process.execPath, [CLI, 'mount', p.pool, p.mnt, '--foreground'], { stdio: 'ignore' });
  try {
    // The daemon takes the pool's lock first and listens on its socket only after the FUSE mount:
    // aim at that window.
    for (let i = 0; i < 2000 && !existsSync(path.join(p.pool, POOL_LOCK)); i++) await sleep(5);
    assert.ok(existsSync(path.join(p.pool, POOL_LOCK)), 'the daemon never took the lock');
    assert.ok(!existsSync(path.join(p.pool, POOL_SOCKET)), 'the socket was already there: the window was missed');
    const status = (await callControl(p.pool, 'status', {})) as PoolStatus;
    assert.equal(status.disks.length, 2);
    // The CLI goes the same way.
    assert.equal(cli('status', p.pool, '--json').code, 0);
  } finally {
    const exited = new Promise((r) => daemon.once('exit', r));
    daemon.kill('SIGTERM');
    await exited;
    if (await isMounted(p.mnt)) await lazyUnmount(p.mnt);
    cleanup(p.root);
  }
  // With no daemon alive, a call fails at once and says why.
  await assert.rejects(callControl(p.pool, 'status', {}), /cannot reach the daemon/);
});
