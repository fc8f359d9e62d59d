import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { cleanup, cliJson, eventually, MountedPool } from '../helpers/env.js';
import { csiClient } from '../helpers/csi-client.js';
import { CsiPlugin, startCsiNode, stopCsiNode, type CsiNode } from '../helpers/csi-env.js';

const MiB = 2 ** 20;
const MOUNT = { mount: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } };

/** Runs a shell command in a child process, as a pod would write. */
function sh(cmd: string): { code: number | null; out: string } {
  const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout + r.stderr };
}

async function grpcCode(p: Promise<unknown>): Promise<number> {
  try {
    await p;
  } catch (err) {
    return (err as { code: number }).code;
  }
  return status.OK;
}

interface EngineVolume {
  name: string;
  policy: string;
  capacity: number;
  published: string[];
  usage: { bytes: number };
}
function volumes(n: CsiNode): EngineVolume[] {
  return cliJson<{ volumes: EngineVolume[] }>('volume', 'list', n.pool.pool).volumes;
}

function fragmentsPerExtent(n: CsiNode, file: string): number[] {
  const py =
    "import sqlite3,sys; c=sqlite3.connect('file:'+sys.argv[1]+'?mode=ro', uri=True); d=c.execute('select ino from dirents where name=?', (sys.argv[2],)).fetchone()[0]; print(' '.join(str(r[0]) for r in c.execute('select count(*) from extents e join fragments f on f.eid=e.eid where e.ino=? group by e.eid', (d,))))";
  return execFileSync('python3', ['-c', py, path.join(n.pool.pool, 'metadata.db'), file], { encoding: 'utf8' })
    .trim()
    .split(' ')
    .map(Number);
}

test('volumes: written from a child process, stored with their policy, quota enforced, isolated from each other, expandable', async () => {
  let n: CsiNode | undefined;
  try {
    n = await startCsiNode({ redundancy: 'replication:2', disks: 3 });
    const c = n.client;
    const a = (await c.controller.CreateVolume({
      name: 'pvc-a',
      capacity_range: { required_bytes: 2 * MiB },
      volume_capabilities: [MOUNT],
      parameters: { redundancy: 'erasure:2+1' },
    })) as { volume: { volume_id: string; capacity_bytes: number; accessible_topology: { segments: Record<string, string> }[] } };
    assert.equal(a.volume.capacity_bytes, 2 * MiB);
    assert.deepEqual(a.volume.accessible_topology, [{ segments: { 'topology.dynamicfs.io/node': 'node-1' } }]);
    const b = (await c.controller.CreateVolume({
      name: 'pvc-b',
      capacity_range: { required_bytes: 1 * MiB },
      volume_capabilities: [MOUNT],
      parameters: {},
    })) as { volume: { volume_id: string } };
    const ta = path.join(n.targets, 'pods/a/volumes/vol');
    const tb = path.join(n.targets, 'pods/b/volumes/vol');
    await c.node.NodePublishVolume({ volume_id: a.volume.volume_id, target_path: ta, volume_capability: MOUNT });
    await c.node.NodePublishVolume({ volume_id: b.volume.volume_id, target_path: tb, volume_capability: MOUNT });
    // Published means mounted: the target is in mountinfo.
    assert.ok(
      fs
        .readFileSync('/proc/self/mountinfo', 'utf8')
        .split('\n')
        .some((l) => l.split(' ')[4] === ta),
    );

    assert.equal(sh(`head -c 1500000 /dev/urandom > ${ta}/data && sync ${ta}/data`).code, 0);
    assert.equal(sh(`echo b-only > ${tb}/mine`).code, 0);
    assert.deepEqual(fs.readdirSync(ta).sort(), ['data']);
    assert.deepEqual(fs.readdirSync(tb).sort(), ['mine']);
    assert.ok(!fs.readdirSync(path.join(ta, '..')).includes('pvc-b'), 'a volume sees its neighbours');
    // Erasure 2+1: three fragments per extent. The default volume: replication:2.
    assert.ok(fragmentsPerExtent(n, 'data').every((k) => k === 3));
    assert.ok(fragmentsPerExtent(n, 'mine').every((k) => k === 2));

    // Quota: past 2 MiB the writer gets EDQUOT; nothing spills over.
    const over = sh(`dd if=/dev/zero of=${ta}/more bs=256k count=8 2>&1`);
    assert.notEqual(over.code, 0);
    assert.match(over.out, /quota/i);
    const used = volumes(n).find((v) => v.name === 'pvc-a')?.usage.bytes ?? 0;
    assert.ok(used <= 2 * MiB, `volume holds ${used} bytes, over its 2 MiB`);
    const stats = (await c.node.NodeGetVolumeStats({ volume_id: a.volume.volume_id, volume_path: ta })) as {
      usage: { unit: string; total: number; used: number; available: number }[];
      volume_condition: { abnormal: boolean };
    };
    const bytes = stats.usage.find((u) => u.unit === 'BYTES');
    assert.equal(bytes?.total, 2 * MiB);
    assert.ok((bytes?.used ?? 0) >= 1_500_000);
    assert.equal(stats.volume_condition.abnormal, false);

    // Node expansion raises the quota at once.
    const grown = (await c.node.NodeExpandVolume({
      volume_id: a.volume.volume_id,
      volume_path: ta,
      capacity_range: { required_bytes: 8 * MiB },
    })) as { capacity_bytes: number };
    assert.equal(grown.capacity_bytes, 8 * MiB);
    assert.equal(sh(`dd if=/dev/zero of=${ta}/more bs=256k count=8 2>&1`).code, 0);

    // A degraded volume is reported abnormal.
    const disk = cliJson<{ disks: { id: string }[] }>('list-disks', n.pool.pool).disks[0].id;
    cliJson('set-disk-health', n.pool.pool, disk, 'failed');
    const sick = (await c.node.NodeGetVolumeStats({ volume_id: a.volume.volume_id, volume_path: ta })) as {
      volume_condition: { abnormal: boolean; message: string };
    };
    assert.equal(sick.volume_condition.abnormal, true);
    assert.match(sick.volume_condition.message, /degraded/);

    // Read-only publication.
    const ro = path.join(n.targets, 'pods/c/volumes/vol');
    await c.node.NodePublishVolume({ volume_id: b.volume.volume_id, target_path: ro, volume_capability: MOUNT, readonly: true });
    assert.equal(fs.readFileSync(path.join(ro, 'mine'), 'utf8'), 'b-only\n');
    assert.match(sh(`echo x > ${ro}/new 2>&1`).out, /Read-only/);

    for (const t of [ta, tb, ro])
      await c.node.NodeUnpublishVolume({ volume_id: t === ta ? a.volume.volume_id : b.volume.volume_id, target_path: t });
    assert.ok(!fs.existsSync(ta) && !fs.existsSync(ro), 'unpublish leaves the target');
    await c.node.NodeUnpublishVolume({ volume_id: a.volume.volume_id, target_path: ta }); // idempotent
    await c.controller.DeleteVolume({ volume_id: a.volume.volume_id });
    await c.controller.DeleteVolume({ volume_id: a.volume.volume_id });
    assert.deepEqual(
      volumes(n).map((v) => v.name),
      ['pvc-b'],
    );
  } finally {
    await stopCsiNode(n);
    if (n) cleanup(n.pool.root);
  }
});

test('restarts: the CSI plugin restarting leaves mounts working; the engine daemon restarting re-binds targets; a dead mount unpublishes', async () => {
  let n: CsiNode | undefined;
  let plugin: CsiPlugin | undefined;
  try {
    n = await startCsiNode({ redundancy: 'replication:2', disks: 2 });
    const v = (await n.client.controller.CreateVolume({
      name: 'pvc-r',
      capacity_range: { required_bytes: 4 * MiB },
      volume_capabilities: [MOUNT],
    })) as { volume: { volume_id: string } };
    const id = v.volume.volume_id;
    const t1 = path.join(n.targets, 'pods/r1/vol');
    const t2 = path.join(n.targets, 'pods/r2/vol');
    await n.client.node.NodePublishVolume({ volume_id: id, target_path: t1, volume_capability: MOUNT });
    await n.client.node.NodePublishVolume({ volume_id: id, target_path: t2, volume_capability: MOUNT });
    assert.equal(sh(`echo before > ${t1}/f`).code, 0);

    // The plugin dies (an upgrade): the volume keeps working, and a new plugin serves it.
    n.client.close();
    await n.plugin.stop('SIGKILL');
    assert.equal(sh(`echo during >> ${t1}/f`).code, 0);
    fs.rmSync(n.socket, { force: true });
    plugin = await CsiPlugin.start(n.socket, { pool: n.pool.pool }, n.targets);
    n.plugin = plugin;
    n.client = csiClient(n.socket);
    assert.equal(
      (await n.client.identity.Probe({})).ready && ((await n.client.identity.Probe({})) as { ready: { value: boolean } }).ready.value,
      true,
    );

    // The engine daemon dies: the targets go dead; a new daemon re-binds them and new opens work.
    await n.mount.kill({ detach: false });
    assert.notEqual(sh(`cat ${t1}/f`).code, 0, 'a dead mount still answered');
    assert.equal(
      ((await n.client.identity.Probe({})) as { ready: { value: boolean } }).ready.value,
      false,
      'Probe says ready with the engine down',
    );
    // While it is down, kubelet unpublishes t2: the plugin unmounts the dead target itself.
    await n.client.node.NodeUnpublishVolume({ volume_id: id, target_path: t2 });
    assert.ok(!fs.existsSync(t2));
    // A row written by an older version has no target root: it is still re-bound.
    execFileSync('python3', [
      '-c',
      'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("update publications set root = null"); c.commit()',
      path.join(n.pool.pool, 'metadata.db'),
    ]);
    n.mount = await MountedPool.start(n.pool.pool, n.pool.mnt);
    await eventually('t1 to be re-bound', () => (sh(`cat ${t1}/f`).code === 0 ? true : undefined), 15_000);
    assert.equal(fs.readFileSync(path.join(t1, 'f'), 'utf8'), 'before\nduring\n');
    assert.equal(sh(`echo after >> ${t1}/f && cat ${t1}/f`).out, 'before\nduring\nafter\n');
    const node = n;
    await eventually(
      'the daemon to forget the target unpublished while it was down',
      () => {
        const pub = volumes(node).find((x) => x.name === 'pvc-r')?.published ?? [];
        return pub.length === 1 && pub[0] === t1 ? true : undefined;
      },
      15_000,
    );
    assert.ok(!fs.existsSync(t2));
    const m = n.mount;
    await eventually('the re-bind logged', () => (/re-bound volume pvc-r at/.test(m.log()) ? true : undefined), 10_000);

    await n.client.node.NodeUnpublishVolume({ volume_id: id, target_path: t1 });
    assert.ok(!fs.existsSync(t1));
  } finally {
    await stopCsiNode(n);
    if (n) cleanup(n.pool.root);
  }
});

test('inline ephemeral volumes (once enabled) are created at publish and deleted at unpublish', async () => {
  let n: CsiNode | undefined;
  try {
    n = await startCsiNode({ redundancy: 'replication:2', disks: 2, pluginArgs: ['--ephemeral'] });
    const t = path.join(n.targets, 'pods/e/vol');
    await n.client.node.NodePublishVolume({
      volume_id: 'csi-0123456789abcdef',
      target_path: t,
      volume_capability: MOUNT,
      volume_context: { 'csi.storage.k8s.io/ephemeral': 'true', 'csi.storage.k8s.io/pod.name': 'p', size: String(MiB) },
    });
    assert.equal(sh(`echo scratch > ${t}/x`).code, 0);
    const eph = volumes(n);
    assert.equal(eph.length, 1);
    assert.equal(eph[0].capacity, MiB);
    assert.notEqual(sh(`dd if=/dev/zero of=${t}/big bs=256k count=8 2>&1`).code, 0, 'the inline volume has no quota');
    await n.client.node.NodeUnpublishVolume({ volume_id: 'csi-0123456789abcdef', target_path: t });
    assert.deepEqual(volumes(n), []);
  } finally {
    await stopCsiNode(n);
    if (n) cleanup(n.pool.root);
  }
});

test('bad requests get the right code and change nothing', async () => {
  let n: CsiNode | undefined;
  try {
    n = await startCsiNode({ redundancy: 'replication:2', disks: 2 });
    const c = n.client;
    const targets = n.targets;
    const cases: [string, () => Promise<unknown>, number][] = [
      ['CreateVolume without a name', () => c.controller.CreateVolume({ volume_capabilities: [MOUNT] }), status.INVALID_ARGUMENT],
      ['CreateVolume without capabilities', () => c.controller.CreateVolume({ name: 'x' }), status.INVALID_ARGUMENT],
      [
        'CreateVolume with a hostile name',
        () => c.controller.CreateVolume({ name: '../../etc', volume_capabilities: [MOUNT] }),
        status.INVALID_ARGUMENT,
      ],
      [
        'CreateVolume with a NUL in the name',
        () => c.controller.CreateVolume({ name: 'a\0b', volume_capabilities: [MOUNT] }),
        status.INVALID_ARGUMENT,
      ],
      [
        'CreateVolume with an oversized name',
        () => c.controller.CreateVolume({ name: 'n'.repeat(300), volume_capabilities: [MOUNT] }),
        status.INVALID_ARGUMENT,
      ],
      [
        'CreateVolume on an unknown pool',
        () => c.controller.CreateVolume({ name: 'x', volume_capabilities: [MOUNT], parameters: { pool: 'nope' } }),
        status.INVALID_ARGUMENT,
      ],
      [
        'CreateVolume with a malformed policy',
        () => c.controller.CreateVolume({ name: 'x', volume_capabilities: [MOUNT], parameters: { redundancy: 'raid5' } }),
        status.INVALID_ARGUMENT,
      ],
      [
        'CreateVolume with an impossible policy',
        () => c.controller.CreateVolume({ name: 'x', volume_capabilities: [MOUNT], parameters: { redundancy: 'erasure:4+2' } }),
        status.RESOURCE_EXHAUSTED,
      ],
      [
        'CreateVolume larger than the pool',
        () => c.controller.CreateVolume({ name: 'x', volume_capabilities: [MOUNT], capacity_range: { required_bytes: 2 ** 52 } }),
        status.RESOURCE_EXHAUSTED,
      ],
      [
        'CreateVolume with block access',
        () => c.controller.CreateVolume({ name: 'x', volume_capabilities: [{ block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } }] }),
        status.INVALID_ARGUMENT,
      ],
      [
        'CreateVolume multi-node',
        () =>
          c.controller.CreateVolume({ name: 'x', volume_capabilities: [{ mount: {}, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } }] }),
        status.INVALID_ARGUMENT,
      ],
      [
        'CreateVolume with an unknown parameter',
        () => c.controller.CreateVolume({ name: 'x', volume_capabilities: [MOUNT], parameters: { replicas: '3' } }),
        status.INVALID_ARGUMENT,
      ],
      ['DeleteVolume without an id', () => c.controller.DeleteVolume({}), status.INVALID_ARGUMENT],
      ['DeleteVolume with a hostile id', () => c.controller.DeleteVolume({ volume_id: 'pool:../../x' }), status.INVALID_ARGUMENT],
      [
        'NodePublishVolume of an unknown volume',
        () => c.node.NodePublishVolume({ volume_id: 'pool:missing', target_path: path.join(targets, 't'), volume_capability: MOUNT }),
        status.NOT_FOUND,
      ],
      [
        'NodePublishVolume outside the target root',
        () => c.node.NodePublishVolume({ volume_id: 'pool:missing', target_path: '/etc/cron.d/x', volume_capability: MOUNT }),
        status.INVALID_ARGUMENT,
      ],
      [
        'NodePublishVolume with a relative target',
        () => c.node.NodePublishVolume({ volume_id: 'pool:missing', target_path: 'x/../y', volume_capability: MOUNT }),
        status.INVALID_ARGUMENT,
      ],
      [
        'NodePublishVolume escaping with ..',
        () => c.node.NodePublishVolume({ volume_id: 'pool:missing', target_path: `${targets}/../../etc`, volume_capability: MOUNT }),
        status.INVALID_ARGUMENT,
      ],
      [
        'NodePublishVolume with a hostile mount flag',
        () =>
          c.node.NodePublishVolume({
            volume_id: 'pool:missing',
            target_path: path.join(targets, 't'),
            volume_capability: { mount: { mount_flags: ['suid'] }, access_mode: { mode: 'SINGLE_NODE_WRITER' } },
          }),
        status.INVALID_ARGUMENT,
      ],
      ['NodeUnpublishVolume without a target', () => c.node.NodeUnpublishVolume({ volume_id: 'pool:x' }), status.INVALID_ARGUMENT],
      [
        'NodeGetVolumeStats of an unknown volume',
        () => c.node.NodeGetVolumeStats({ volume_id: 'pool:missing', volume_path: path.join(targets, 't') }),
        status.NOT_FOUND,
      ],
      ['ListVolumes with a forged token', () => c.controller.ListVolumes({ starting_token: 'garbage' }), status.ABORTED],
    ];
    for (const [what, call, want] of cases) assert.equal(await grpcCode(call()), want, what);
    // Two operations on one volume at once: the second is ABORTED.
    const codes = await Promise.all([1, 2].map(() => grpcCode(c.controller.CreateVolume({ name: 'race', volume_capabilities: [MOUNT] }))));
    assert.deepEqual(codes.sort(), [status.OK, status.ABORTED]);
    await c.controller.DeleteVolume({ volume_id: 'pool:race' });
    assert.deepEqual(volumes(n), [], 'a refused request left a volume behind');
    assert.deepEqual(fs.readdirSync(n.targets), [], 'a refused request left a target behind');

    // A real volume with a hostile flag: refused before anything is mounted.
    const v = (await c.controller.CreateVolume({ name: 'ok', volume_capabilities: [MOUNT] })) as { volume: { volume_id: string } };
    const t = path.join(n.targets, 't');
    assert.equal(
      await grpcCode(
        c.node.NodePublishVolume({
          volume_id: v.volume.volume_id,
          target_path: t,
          volume_capability: { mount: { mount_flags: ['suid', 'dev'] }, access_mode: { mode: 'SINGLE_NODE_WRITER' } },
        }),
      ),
      status.INVALID_ARGUMENT,
    );
    assert.ok(!fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(t));
    // Same name, other size: ALREADY_EXISTS; the volume is unchanged.
    assert.equal(
      await grpcCode(c.controller.CreateVolume({ name: 'ok', volume_capabilities: [MOUNT], capacity_range: { required_bytes: 5 } })),
      status.ALREADY_EXISTS,
    );
    assert.equal(volumes(n)[0].capacity, 1024 ** 3);
  } finally {
    await stopCsiNode(n);
    if (n) cleanup(n.pool.root);
  }
});
