import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { isMounted, lazyUnmount } from '../../engine/fuse/mount.js';
import { cleanup, eventually, tempDir } from '../helpers/env.js';

const SERVER = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../bench/kernel-null.js');

test("the bench's /dev/fuse server mounts, takes 1 MiB requests, answers dd and unmounts on SIGTERM", async () => {
  const root = tempDir('dfs-kernel-null-');
  const mnt = path.join(root, 'mnt');
  mkdirSync(mnt);
  const server = spawn(process.execPath, [SERVER, mnt, '1024'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  server.stdout.on('data', (d: Buffer) => (out += d.toString()));
  try {
    await eventually('the mount', async () => ((await isMounted(mnt)) ? true : undefined), 10_000);
    const line = spawnSync('grep', [` ${mnt} `, '/proc/self/mountinfo'], { encoding: 'utf8' }).stdout;
    assert.match(line, / - fuse\.kernelnull kernelnull /);
    const w = spawnSync('dd', ['if=/dev/zero', `of=${path.join(mnt, 'file')}`, 'bs=1M', 'count=16', 'status=none']);
    assert.equal(w.status, 0, w.stderr.toString());
    const r = spawnSync('dd', [`if=${path.join(mnt, 'file')}`, 'bs=1M', 'count=16', 'status=none'], { maxBuffer: 32 << 20 });
    assert.equal(r.status, 0, r.stderr.toString());
    assert.equal(r.stdout.length, 16 << 20);
    assert.ok(r.stdout.every((b) => b === 0));
    server.kill('SIGTERM');
    await once(server, 'exit');
    assert.equal(await isMounted(mnt), false);
    // libfuse 2 would have been held to 128 KiB; the kernel agreed to 1 MiB with this server.
    assert.match(out, /largest requests: read 1048576 write 1048576/);
  } finally {
    server.kill('SIGKILL');
    await lazyUnmount(mnt);
    cleanup(root);
  }
});
