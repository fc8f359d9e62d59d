import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { PoolStatus } from '../../engine/report/status.js';
import type { Diagnosis } from '../../engine/report/diagnose.js';
import { groupDomains, probeDevice } from '../../engine/pool/failure-domain.js';
import {
  cleanup,
  cli,
  cliJson,
  eventually,
  freePort,
  httpGet,
  makePool,
  metricValue,
  MountedPool,
  tempDir,
  writeSamples,
} from '../helpers/env.js';
import { loopDisksUnavailable } from '../helpers/loop-disk.js';
import { CsiPlugin, startCsiNode, stopCsiNode } from '../helpers/csi-env.js';
import { status } from '@grpc/grpc-js';
import { csiClient, grpcError } from '../helpers/csi-client.js';
import { skipBecause } from '../helpers/skip.js';

const MiB = 2 ** 20;
const MOUNT = { mount: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } };

/**
 * Devices for the tests, undone in reverse: tmpfs mounts (each its own backing device), loop
 * devices over image files, a partition table on one of them, ext4 filesystems mounted on them.
 */
class Devices {
  private readonly undo: (() => void)[] = [];
  constructor(readonly root: string) {}

  tmpfs(name: string, sizeMiB: number): string {
    const dir = path.join(this.root, name);
    fs.mkdirSync(dir);
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMiB}m`, 'tmpfs', dir]);
    this.undo.push(() => spawnSync('umount', ['-l', dir]));
    return dir;
  }

  /** A loop device over a new image file in `where`; with `partitions`, an MBR with two of them. */
  loop(where: string, name: string, sizeMiB: number, partitions = false): string {
    const img = path.join(where, `${name}.img`);
    execFileSync('truncate', ['-s', `${sizeMiB}M`, img]);
    if (partitions) {
      // Two primary partitions (type 83): sectors 2048.. for half of it, the rest after.
      const mbr = Buffer.alloc(512);
      const half = (sizeMiB * 2048) / 2;
      const entry = (i: number, start: number, count: number) => {
        mbr[446 + 16 * i + 4] = 0x83;
        mbr.writeUInt32LE(start, 446 + 16 * i + 8);
        mbr.writeUInt32LE(count, 446 + 16 * i + 12);
      };
      entry(0, 2048, half - 2048);
      entry(1, half, sizeMiB * 2048 - half);
      mbr[510] = 0x55;
      mbr[511] = 0xaa;
      const fd = fs.openSync(img, 'r+');
      fs.writeSync(fd, mbr, 0, 512, 0);
      fs.closeSync(fd);
    }
    const dev = execFileSync('losetup', ['-f', '--show', img], { encoding: 'utf8' }).trim();
    this.undo.push(() => spawnSync('losetup', ['-d', dev]));
    if (partitions) {
      execFileSync('partx', ['-a', dev]);
      this.undo.push(() => spawnSync('partx', ['-d', dev]));
    }
    return dev;
  }

  /** ext4 on `dev`, mounted at ROOT/`name`. */
  filesystem(dev: string, name: string): string {
    const mnt = path.join(this.root, name);
    execFileSync('mkfs.ext4', ['-q', '-m', '0', dev]);
    fs.mkdirSync(mnt);
    execFileSync('mount', [dev, mnt]);
    // A plain unmount first: a lazy one keeps the device busy, and its partitions would stay behind.
    this.undo.push(() => spawnSync('umount', [mnt]).status === 0 || spawnSync('umount', ['-l', mnt]));
    return mnt;
  }

  /** A loop device whose backing is another block device. */
  loopOver(device: string): string {
    const dev = execFileSync('losetup', ['-f', '--show', device], { encoding: 'utf8' }).trim();
    this.undo.push(() => spawnSync('losetup', ['-d', dev]));
    return dev;
  }

  onRelease(fn: () => void): void {
    this.undo.push(fn);
  }

  release(): void {
    for (const u of this.undo.reverse()) u();
    this.undo.length = 0;
  }

  /** Loop devices still attached to images under the root (none once released). */
  leftovers(): string[] {
    return execFileSync('losetup', ['-a'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.includes(this.root));
  }
}

const dirIn = (parent: string, name: string) => {
  const d = path.join(parent, name);
  fs.mkdirSync(d);
  return d;
};

test('failure domains are found from the devices: directories of one filesystem, loop files on one filesystem and partitions of one disk share one; separate devices do not', async (t) => {
  const why = loopDisksUnavailable();
  if (why) return skipBecause(t, why);
  const root = tempDir('dfs-domains-');
  const dev = new Devices(root);
  try {
    // Two loop filesystems whose images are on this machine's disk, one on a tmpfs of its own, and a
    // partitioned loop device on another tmpfs.
    const a = dev.filesystem(dev.loop(root, 'a', 24), 'fs-a');
    const c = dev.filesystem(dev.loop(root, 'c', 24), 'fs-c');
    const b = dev.filesystem(dev.loop(dev.tmpfs('t1', 64), 'b', 24), 'fs-b');
    const pdev = dev.loop(dev.tmpfs('t2', 64), 'p', 48, true);
    const p1 = dev.filesystem(`${pdev}p1`, 'fs-p1');
    const p2 = dev.filesystem(`${pdev}p2`, 'fs-p2');
    // An overlay whose layers are on fs-a, and a filesystem on a loop device over a loop device of fs-b's tmpfs.
    for (const x of ['lower', 'upper', 'work']) dirIn(a, x);
    const ovl = dirIn(root, 'ovl');
    execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${a}/lower,upperdir=${a}/upper,workdir=${a}/work`, ovl]);
    dev.onRelease(() => spawnSync('umount', [ovl]));
    const stacked = dev.filesystem(dev.loopOver(dev.loop(path.join(root, 't1'), 's', 24)), 'fs-s');
    const disks = {
      a1: dirIn(a, 'd1'),
      a2: dirIn(a, 'd2'),
      c1: dirIn(c, 'd1'),
      b1: dirIn(b, 'd1'),
      p1: dirIn(p1, 'd1'),
      p2: dirIn(p2, 'd1'),
      o1: dirIn(ovl, 'd1'),
      s1: dirIn(stacked, 'd1'),
    };
    const probes = Object.fromEntries(await Promise.all(Object.entries(disks).map(async ([k, d]) => [k, await probeDevice(d)] as const)));
    const domain = groupDomains(Object.entries(probes).map(([id, probe]) => ({ id, override: null, probe })));
    const label = (k: string) => `${k}: ${probes[k].label}`;
    assert.equal(domain.get('a1'), domain.get('a2'), `two directories on one loop filesystem: ${label('a1')} / ${label('a2')}`);
    assert.equal(domain.get('a1'), domain.get('c1'), `loop files on one filesystem: ${label('a1')} / ${label('c1')}`);
    assert.notEqual(domain.get('a1'), domain.get('b1'), `loop filesystems on separate devices: ${label('a1')} / ${label('b1')}`);
    assert.equal(domain.get('p1'), domain.get('p2'), `partitions of one loop device: ${label('p1')} / ${label('p2')}`);
    assert.notEqual(domain.get('p1'), domain.get('b1'));
    assert.equal(domain.get('o1'), domain.get('a1'), `an overlay over fs-a is fs-a's domain: ${label('o1')}`);
    assert.equal(domain.get('s1'), domain.get('b1'), `a loop device over a loop device of t1 is t1's domain: ${label('s1')}`);
    assert.match(probes.b1.warning ?? '', /in memory: a reboot empties it/);
    assert.match(probes.p1.label, /partition of loop\d+ -> tmpfs/);
    // One filesystem is one, for capacity: the two directories of fs-a report it.
    assert.equal(probes.a1.fs, probes.a2.fs);
    assert.notEqual(probes.a1.fs, probes.c1.fs);

    // add-disk says it, and refuses without the explicit flag; a named domain is the administrator's word.
    const pool = path.join(root, 'pool');
    assert.equal(cli('init', pool, '--redundancy', 'replication:2').code, 0);
    assert.equal(cli('add-disk', pool, disks.a1).code, 0);
    for (const k of ['a2', 'c1'] as const) {
      const r = cli('add-disk', pool, disks[k]);
      assert.notEqual(r.code, 0, `${k} was added beside a1`);
      assert.match(r.stderr, /shares failure domain \S+ with disk-\w+ .*--allow-shared-domain/);
    }
    assert.equal(cli('add-disk', pool, disks.b1).code, 0, 'a disk on a separate device was refused');
    const shared = cli('add-disk', pool, disks.a2, '--allow-shared-domain');
    assert.equal(shared.code, 0);
    assert.match(shared.stderr, /warning: disk .* shares failure domain/);
    assert.equal(cli('add-disk', pool, disks.p1, '--failure-domain', 'shelf-3').code, 0);
    const list = cliJson<{ disks: { path: string; failureDomain: string; domainNamed: boolean; device: string }[] }>(
      'list-disks',
      pool,
    ).disks;
    const of = (p: string) => list.find((d) => d.path === p);
    assert.equal(of(disks.a1)?.failureDomain, of(disks.a2)?.failureDomain);
    assert.notEqual(of(disks.a1)?.failureDomain, of(disks.b1)?.failureDomain);
    assert.deepEqual([of(disks.p1)?.failureDomain, of(disks.p1)?.domainNamed], ['shelf-3', true]);
    // A failure domain name is checked like any input.
    assert.match(cli('set-failure-domain', pool, disks.b1, '../x').stderr, /failure domain '\.\.\/x' must be/);
    assert.equal(cli('set-failure-domain', pool, disks.p1, 'auto').code, 0);
    assert.equal(
      cliJson<{ disks: { path: string; domainNamed: boolean }[] }>('list-disks', pool).disks.find((d) => d.path === disks.p1)?.domainNamed,
      false,
    );
  } finally {
    dev.release();
    assert.deepEqual(dev.leftovers(), [], 'loop devices left attached');
    cleanup(root);
  }
});

test('replication:2 on one failure domain: writes refused with the domains named, unless shared domains are allowed, which status, diagnose, /health, metrics and capacity then report', async (t) => {
  const why = loopDisksUnavailable();
  if (why) return skipBecause(t, why);
  const root = tempDir('dfs-onedomain-');
  const dev = new Devices(root);
  let m: MountedPool | undefined;
  try {
    const fsDir = dev.filesystem(dev.loop(root, 'one', 64), 'one');
    const disks = ['d1', 'd2', 'd3'].map((n) => dirIn(fsDir, n));
    const pool = path.join(root, 'pool');
    const mnt = dirIn(root, 'mnt');
    assert.equal(cli('init', pool, '--redundancy', 'replication:2').code, 0);
    assert.equal(cli('add-disk', pool, disks[0]).code, 0);
    for (const d of disks.slice(1)) assert.equal(cli('add-disk', pool, d, '--allow-shared-domain').code, 0);

    // Capacity: three directories of one filesystem are that filesystem, once.
    const st = fs.statfsSync(fsDir);
    const status = cliJson<PoolStatus>('status', pool);
    assert.equal(
      status.capacity.raw,
      st.blocks * st.bsize,
      `raw capacity ${status.capacity.raw} is not the filesystem's ${st.blocks * st.bsize}`,
    );
    assert.ok(Math.abs(status.capacity.free - st.bavail * st.bsize) <= 2 * MiB);
    assert.equal(status.capacity.usableFree, 0, 'usable space where no extent can be written');
    assert.equal(status.failureDomains.count, 1);
    assert.equal(status.health, 'degraded');
    assert.match(
      status.reasons.join('\n'),
      /writes under replication:2 fail: it needs 2 failure domains and the pool has 1 \(disks disk-\w+ and disk-\w+ and disk-\w+ share \S+\)/,
    );

    // Writes fail with ENOSPC, and the daemon's log names the domains.
    m = await MountedPool.start(pool, mnt);
    const w = spawnSync('sh', ['-c', `head -c 300000 /dev/urandom > ${mnt}/f && sync ${mnt}/f`], { encoding: 'utf8' });
    assert.notEqual(w.status, 0, 'a replication:2 write on one failure domain succeeded');
    assert.match(w.stderr, /No space left on device/);
    const daemon = m;
    await eventually(
      'the daemon to say why',
      () =>
        /ENOSPC.*needs 2 failure domains but the pool's healthy disks are in 1: \S+ \(disk-\w+, disk-\w+, disk-\w+\)/.test(daemon.log())
          ? true
          : undefined,
      10_000,
    );
    await m.stop();
    m = undefined;

    // Allowed (tests and demos): the writes go through, and every surface says the redundancy is illusory.
    const cfg = path.join(root, 'shared.yaml');
    const port = await freePort();
    fs.writeFileSync(cfg, 'reliability:\n  allow_shared_failure_domains: true\n');
    m = await MountedPool.start(pool, mnt, ['--config', cfg, '--metrics-listen', `127.0.0.1:${port}`]);
    fs.writeFileSync(path.join(mnt, 'f'), Buffer.alloc(300_000, 5));
    const after = cliJson<PoolStatus>('status', pool);
    assert.equal(after.health, 'degraded');
    assert.match(after.reasons.join('\n'), /redundancy replication:2 is illusory: it needs 2 failure domains and the pool has 1/);
    assert.match(after.reasons.join('\n'), /\d+ extent\(s\) have fragments together in one failure domain/);
    assert.ok(after.failureDomains.sharedExtents >= 1);
    assert.equal(after.capacity.usableFree, Math.floor(after.capacity.free / 2));
    const diag = cliJson<Diagnosis>('diagnose', pool);
    const issue = diag.issues.find((i) => i.check === 'failure-domains.short');
    assert.equal(issue?.severity, 'warning');
    assert.match(
      issue?.message ?? '',
      /redundancy replication:2 is illusory: 2 fragments on 1 failure domain\(s\): disks .* share device \S+/,
    );
    assert.match(issue?.runbook ?? '', /shared-failure-domains\.md/);
    const health = await httpGet(`http://127.0.0.1:${port}/health`);
    assert.equal(health.status, 202);
    assert.match(health.body, /is illusory/);
    const metricsText = (await httpGet(`http://127.0.0.1:${port}/metrics`)).body;
    assert.equal(metricValue(metricsText, 'dynamicfs_failure_domains', { pool: 'pool' }), 1);
    assert.equal(metricValue(metricsText, 'dynamicfs_policies_short_of_failure_domains', { pool: 'pool' }), 1);
    assert.ok((metricValue(metricsText, 'dynamicfs_extents_sharing_failure_domain', { pool: 'pool' }) ?? 0) >= 1);
    assert.equal(fs.readFileSync(path.join(mnt, 'f')).length, 300_000);
  } finally {
    await m?.stop();
    dev.release();
    cleanup(root);
  }
});

test('GetCapacity counts three directories of one filesystem once', async (t) => {
  const why = loopDisksUnavailable();
  if (why) return skipBecause(t, why);
  const root = tempDir('dfs-getcap-');
  const dev = new Devices(root);
  let m: MountedPool | undefined;
  let plugin: CsiPlugin | undefined;
  let client: ReturnType<typeof csiClient> | undefined;
  try {
    const fsDir = dev.filesystem(dev.loop(root, 'one', 64), 'one');
    const pool = path.join(root, 'pool');
    assert.equal(cli('init', pool, '--redundancy', 'replication:2').code, 0);
    const cfg = path.join(root, 'shared.yaml');
    fs.writeFileSync(cfg, 'reliability:\n  allow_shared_failure_domains: true\n');
    assert.equal(cli('config', 'apply', pool, cfg).code, 0);
    for (const d of ['d1', 'd2', 'd3']) assert.equal(cli('add-disk', pool, dirIn(fsDir, d)).code, 0);
    m = await MountedPool.start(pool, dirIn(root, 'mnt'));
    const socket = path.join(root, 'csi.sock');
    plugin = await CsiPlugin.start(socket, { pool }, dirIn(root, 'kubelet'));
    client = csiClient(socket);
    const st = fs.statfsSync(fsDir);
    const fsFree = st.bavail * st.bsize;
    for (const [policy, share] of [
      ['replication:1', 1],
      ['replication:2', 0.5],
    ] as const) {
      const r = (await client.controller.GetCapacity({ parameters: { pool: 'pool', redundancy: policy } })) as {
        available_capacity: number;
      };
      const got = Number(r.available_capacity);
      assert.ok(
        Math.abs(got - fsFree * share) <= MiB,
        `${policy}: GetCapacity ${got}, the filesystem's free space ${fsFree} times ${share}`,
      );
    }
    const status = cliJson<PoolStatus>('status', pool);
    assert.equal(status.capacity.raw, st.blocks * st.bsize);
  } finally {
    client?.close();
    await plugin?.stop();
    await m?.stop();
    dev.release();
    cleanup(root);
  }
});

test('a rebuild never puts two fragments of an extent in one failure domain; a drain that would is refused, changing nothing', async () => {
  // replication:3 on four disks in four named domains; two fail: one spare is left for two lost copies.
  const p = await makePool({ disks: 4, redundancy: 'replication:3' });
  try {
    await writeSamples(p, [{ name: 'f', seed: 9, size: 600_000 }]);
    const disks = cliJson<{ disks: { id: string }[] }>('list-disks', p.pool).disks.map((d) => d.id);
    for (const id of disks.slice(0, 2)) assert.equal(cli('set-disk-health', p.pool, id, 'failed').code, 0);
    cli('rebuild', p.pool);
    const twice = execFileSync(
      'python3',
      [
        '-c',
        "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute('select eid, disk, count(*) from fragments group by eid, disk having count(*) > 1').fetchall())",
        path.join(p.pool, 'metadata.db'),
      ],
      { encoding: 'utf8' },
    ).trim();
    assert.equal(twice, '[]', 'a rebuild put two copies of an extent on one disk');
  } finally {
    cleanup(p.root);
  }
  const q = await makePool({ disks: 4, redundancy: 'replication:3' });
  try {
    await writeSamples(q, [{ name: 'f', seed: 9, size: 300_000 }]);
    const disks = cliJson<{ disks: { id: string }[] }>('list-disks', q.pool).disks.map((d) => d.id);
    // Two disks named into one domain: draining a third would leave replication:3 two domains.
    assert.equal(cli('set-failure-domain', q.pool, disks[0], 'shelf-1').code, 0);
    const merged = cli('set-failure-domain', q.pool, disks[1], 'shelf-1');
    assert.equal(merged.code, 0);
    assert.match(merged.stderr, /warning: disk \S+ now shares failure domain shelf-1 with/);
    const drain = cli('remove-disk', q.pool, disks[3]);
    assert.notEqual(drain.code, 0);
    assert.match(drain.stderr, /replication:3 needs 3 failure domains; the remaining healthy disks are in 2 .*Nothing was changed/);
    assert.equal(
      cliJson<{ disks: { id: string; health: string }[] }>('list-disks', q.pool).disks.find((d) => d.id === disks[3])?.health,
      'healthy',
    );
    // Names are checked, and 'auto' is not one.
    for (const bad of ['auto', '', '../x']) {
      const r = cli('add-disk', q.pool, q.disks[0], '--failure-domain', bad);
      assert.notEqual(r.code, 0, `--failure-domain '${bad}' accepted`);
      assert.match(r.stderr, /failure domain '.*' (is reserved|must be)/);
    }
  } finally {
    cleanup(q.root);
  }
});

test('volumes reserve raw space under their own policy: GetCapacity for another policy does not overcommit', async () => {
  // Two disks named apart on this machine's one filesystem: replication:1 may use all of its free space,
  // replication:2 half of it.
  const n = await startCsiNode({ disks: 2, redundancy: 'replication:2' });
  const cap = async (policy: string) =>
    Number(
      ((await n.client.controller.GetCapacity({ parameters: { pool: 'pool', redundancy: policy } })) as { available_capacity: number })
        .available_capacity,
    );
  try {
    const one = await cap('replication:1');
    const two = await cap('replication:2');
    assert.ok(Math.abs(one - 2 * two) <= 2 * MiB, `replication:1 ${one}, replication:2 ${two}`);
    // A replication:2 volume of 40 % of what replication:2 can hold takes 80 % of the raw space.
    const size = Math.floor((two * 0.4) / MiB) * MiB;
    await n.client.controller.CreateVolume({
      name: 'big',
      capacity_range: { required_bytes: size },
      volume_capabilities: [MOUNT],
      parameters: { redundancy: 'replication:2' },
    });
    const after = await cap('replication:1');
    assert.ok(
      after <= one - 2 * size + 4 * MiB,
      `replication:1 after a ${size}-byte replication:2 volume: ${after} of ${one}; its copies take ${2 * size}`,
    );
    const over = await grpcError(
      n.client.controller.CreateVolume({
        name: 'over',
        capacity_range: { required_bytes: after + 64 * MiB },
        volume_capabilities: [MOUNT],
        parameters: { redundancy: 'replication:1' },
      }),
    );
    assert.equal(over.code, status.RESOURCE_EXHAUSTED);
  } finally {
    await stopCsiNode(n);
    cleanup(n.pool.root);
  }
});
