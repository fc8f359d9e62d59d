import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { readMounts, topMountAt } from '../../engine/util/mountinfo.js';
import { cleanup, CLI, eventually, makePool, MountedPool, tempDir } from '../helpers/env.js';
import { asNobody, modeOf, openPathTo } from '../helpers/users.js';
import { skipBecause } from '../helpers/skip.js';

/** A v2 file capability granting CAP_SETUID (7), permitted and effective (linux/capability.h). */
const CAP_SETUID_BLOB = (() => {
  const b = Buffer.alloc(20);
  b.writeUInt32LE(0x02000001, 0);
  b.writeUInt32LE(1 << 7, 4);
  return b;
})();

function setCapability(file: string): void {
  execFileSync('python3', [
    '-c',
    'import os,sys; os.setxattr(sys.argv[1], "security.capability", bytes.fromhex(sys.argv[2]))',
    file,
    CAP_SETUID_BLOB.toString('hex'),
  ]);
}

const SETUID_PROBE = ['-c', 'import os; os.setuid(0); print("became root")'];

test('the pool mount is nosuid,nodev: a set-user-ID root file or a file capability in the pool gives a local user nothing', async (t) => {
  const p = await makePool({ disks: 2 });
  openPathTo(p.root);
  const python = fs.realpathSync('/usr/bin/python3');
  // Controls on the plain directory beside the pool: the same files do work where the kernel honours them.
  const control = path.join(p.root, 'control');
  fs.mkdirSync(control, { mode: 0o755 });
  fs.copyFileSync('/usr/bin/id', path.join(control, 'id'));
  fs.chmodSync(path.join(control, 'id'), 0o4755);
  fs.copyFileSync(python, path.join(control, 'py'));
  fs.chmodSync(path.join(control, 'py'), 0o755);
  setCapability(path.join(control, 'py'));
  const controlSuid = asNobody([path.join(control, 'id'), '-u']).out.trim();
  const controlCap = asNobody([path.join(control, 'py'), ...SETUID_PROBE]);
  if (controlSuid !== '0')
    return skipBecause(t, `set-user-ID files are not honoured even outside the pool here (id -u gave ${controlSuid}): nothing to show`);

  const m = await MountedPool.start(p.pool, p.mnt);
  try {
    const mount = topMountAt(await readMounts(), p.mnt);
    assert.ok(mount?.options.includes('nosuid') && mount.options.includes('nodev'), `pool mount options: ${mount?.options.join(',')}`);
    fs.copyFileSync('/usr/bin/id', path.join(p.mnt, 'id'));
    fs.chmodSync(path.join(p.mnt, 'id'), 0o4755);
    assert.equal(
      fs.statSync(path.join(p.mnt, 'id')).mode & 0o7777,
      0o4755,
      'the file keeps its set-user-ID bit (it is stored, not honoured)',
    );
    assert.equal(asNobody([path.join(p.mnt, 'id'), '-u']).out.trim(), '65534', 'a set-user-ID root file in the pool gave nobody uid 0');

    if (!/became root/.test(controlCap.out)) {
      t.diagnostic(`file capabilities are not honoured outside the pool either (${controlCap.out.trim()}): that half is not shown`);
    } else {
      fs.copyFileSync(python, path.join(p.mnt, 'py'));
      fs.chmodSync(path.join(p.mnt, 'py'), 0o755);
      setCapability(path.join(p.mnt, 'py'));
      const r = asNobody([path.join(p.mnt, 'py'), ...SETUID_PROBE]);
      assert.notEqual(r.code, 0);
      assert.match(r.out, /Operation not permitted/, 'a file capability in the pool let nobody become root');
    }
  } finally {
    await m.stop();
  }

  // access_control none: a local user can make a file root's and set-user-ID by itself; still nothing.
  const config = path.join(p.root, 'open.yaml');
  fs.writeFileSync(config, 'security:\n  access_control: none\n');
  const open = await MountedPool.start(p.pool, p.mnt, ['--config', config]);
  try {
    fs.mkdirSync(path.join(p.mnt, 'drop'));
    fs.chmodSync(path.join(p.mnt, 'drop'), 0o777);
    const planted = path.join(p.mnt, 'drop', 'id');
    const plant = asNobody([
      'sh',
      '-c',
      `cp /usr/bin/id ${planted} && chown 0:0 ${planted} && chmod 4755 ${planted} && stat -c %u:%a ${planted}`,
    ]);
    assert.equal(plant.code, 0, plant.out);
    assert.match(plant.out, /^0:4755$/m, 'with access_control none nobody planted a root set-user-ID file');
    assert.equal(asNobody([planted, '-u']).out.trim(), '65534', 'the planted file gave nobody uid 0');
  } finally {
    await open.stop();
    cleanup(p.root);
  }
});

/** Every path under `dir` with its mode, for a readable failure message. */
function modes(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (p: string) => {
    out.set(p, modeOf(p));
    if (fs.lstatSync(p).isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
  };
  walk(dir);
  return out;
}

/** Paths under `top` (itself included) that are not 0700 directories or 0600 files. */
function loose(top: string): string[] {
  return [...modes(top)]
    .filter(([p, mode]) => mode !== (fs.lstatSync(p).isDirectory() ? 0o700 : 0o600))
    .map(([p, mode]) => `${p} ${mode.toString(8)}`);
}

/** The pool directory and, on each disk, the identity file and DynamicFS's directory (the disk directory itself is the administrator's). */
function assertPrivate(pool: string, disks: string[], label: string): void {
  const found = [
    ...loose(pool),
    ...disks.flatMap((d) => [...loose(path.join(d, '.dynamicfs-disk.json')), ...loose(path.join(d, 'dynamicfs'))]),
  ];
  assert.deepEqual(found, [], `${label}: files not 0600 or directories not 0700`);
}

test('files on disk are private: 0600 and 0700 under any umask; a 0600 file in the mount cannot be read from a disk; older pools are tightened', async () => {
  const root = tempDir('dfs-private-');
  openPathTo(root);
  // The CLI under the loosest umask there is.
  const run = (...args: string[]) => {
    const r = spawnSync('sh', ['-c', 'umask 000 && exec "$@"', 'sh', process.execPath, CLI, ...args], { encoding: 'utf8' });
    assert.equal(r.status, 0, `dynamicfs ${args.join(' ')}: ${r.stderr}`);
  };
  const pool = path.join(root, 'pool');
  const disks = [1, 2].map((i) => path.join(root, `disk${i}`));
  const mnt = path.join(root, 'mnt');
  try {
    for (const d of [...disks, mnt]) fs.mkdirSync(d, { mode: 0o755 });
    run('init', pool, '--redundancy', 'replication:2', '--extent-size', '64KiB');
    for (const d of disks) run('add-disk', pool, d, '--failure-domain', path.basename(d));
    run('mount', pool, mnt);
    const secret = path.join(mnt, 'secret');
    fs.writeFileSync(secret, 'the tenant secret '.repeat(100));
    fs.chmodSync(secret, 0o600);
    fs.writeFileSync(path.join(mnt, 'big'), Buffer.alloc(300_000, 7));
    // While mounted: the socket, the lock and the WAL are there too.
    assertPrivate(pool, disks, 'mounted pool');
    assert.ok(fs.existsSync(path.join(pool, 'control.sock')) && fs.existsSync(path.join(pool, 'owner.lock')));
    run('unmount', pool);
    assertPrivate(pool, disks, 'unmounted pool');
    // As another local user: no fragment, no metadata copy, no file name.
    const fragments = [...modes(disks[0]).keys()].filter((p) => /fragments\/[0-9a-f]{2}\/\d+\.\d+$/.test(p));
    assert.ok(fragments.length >= 2);
    for (const f of [
      ...fragments,
      path.join(disks[0], 'dynamicfs/metadata-mirror.db'),
      path.join(pool, 'metadata.db'),
      path.join(pool, 'mount.log'),
    ]) {
      const r = asNobody(['cat', f]);
      assert.notEqual(r.code, 0, `nobody read ${f}`);
      assert.match(r.out, /Permission denied/);
    }
    assert.notEqual(asNobody(['ls', path.join(disks[0], 'dynamicfs')]).code, 0);

    // A pool made before files were private: everything loose again, and the marker that says so.
    for (const [p] of modes(pool)) fs.chmodSync(p, fs.lstatSync(p).isDirectory() ? 0o755 : 0o644);
    for (const d of disks)
      for (const [p] of modes(path.join(d, 'dynamicfs'))) fs.chmodSync(p, fs.lstatSync(p).isDirectory() ? 0o755 : 0o644);
    for (const d of disks) fs.chmodSync(path.join(d, '.dynamicfs-disk.json'), 0o644);
    execFileSync('python3', [
      '-c',
      "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute(\"update meta set value='0' where key='private_files'\"); c.commit()",
      path.join(pool, 'metadata.db'),
    ]);
    fs.chmodSync(path.join(pool, 'metadata.db'), 0o644);
    const m = await MountedPool.start(pool, mnt);
    try {
      // Directories and metadata at once; fragment files in the background of the daemon.
      // The fragment directories and files in the background of the daemon, once.
      await eventually('every fragment directory and file to be private again', () =>
        disks.every((d) => loose(path.join(d, 'dynamicfs')).length === 0) ? true : undefined,
      );
      assertPrivate(pool, disks, 'an older pool after it was opened');
      assert.equal(fs.readFileSync(secret, 'utf8').length, 1800);
    } finally {
      await m.stop();
    }
  } finally {
    spawnSync(process.execPath, [CLI, 'unmount', pool]);
    cleanup(root);
  }
});
