import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { CLI, cleanup, cli, cliJson, makePool, MountedPool, writeSamples } from '../helpers/env.js';

/** Runs a CLI command on a pseudo-terminal (util-linux `script`), as a user at a shell would. */
function onTerminal(...args: string[]): string {
  const cmd = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ');
  return execFileSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', env: { ...process.env, TERM: 'dumb' } });
}

const PROGRESS = /(scrub|rebuild): (\d+)\/(\d+) extents, [\d.]+ (B|KiB|MiB|GiB), [\d.]+ (B|KiB|MiB|GiB)\/s, ETA \d+s/;

test('long operations draw progress on a terminal (extents, bytes, rate, ETA), in-process and through the daemon, and stay quiet otherwise', async () => {
  const p = await makePool({ redundancy: 'replication:2', disks: 3, extentSize: 64 * 1024 });
  let m: MountedPool | undefined;
  try {
    await writeSamples(p, [{ name: 'a', seed: 1, size: 3_000_000 }]);
    const local = onTerminal('scrub', p.pool);
    const last = [...local.matchAll(new RegExp(PROGRESS, 'g'))].pop();
    assert.ok(last, `no progress line in: ${JSON.stringify(local.slice(0, 400))}`);
    assert.equal(last[2], last[3], 'the last progress line is not at 100%');
    assert.ok(!PROGRESS.test(cli('scrub', p.pool).stderr), 'progress drawn without a terminal');

    m = await MountedPool.start(p.pool, p.mnt);
    const disk = cliJson<{ disks: { id: string }[] }>('list-disks', p.pool).disks[0].id;
    assert.equal(cli('set-disk-health', p.pool, disk, 'failed').code, 0);
    const remote = onTerminal('rebuild', p.pool);
    assert.match(remote, /rebuild: \d+\/\d+ extents/, `no progress line through the daemon in: ${JSON.stringify(remote.slice(0, 400))}`);
    assert.match(remote, /rebuilt/);
  } finally {
    await m?.stop();
    cleanup(p.root);
  }
});
