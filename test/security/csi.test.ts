import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { callControl } from '../../engine/control/client.js';
import { readMounts, topMountAt } from '../../engine/util/mountinfo.js';
import { cleanup, cliJson, MountedPool } from '../helpers/env.js';
import { helm } from '../helpers/helm.js';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { grpcError } from '../helpers/csi-client.js';
import { restartPlugin, startCsiNode, stopCsiNode, type CsiNode } from '../helpers/csi-env.js';

const MiB = 2 ** 20;
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const MOUNT = { mount: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
const withFlags = (mount_flags: string[]) => ({ mount: { mount_flags }, access_mode: { mode: 'SINGLE_NODE_WRITER' } });

async function optionsAt(target: string): Promise<string[] | null> {
  return topMountAt(await readMounts(), target)?.options ?? null;
}

/** Mount points at or below `dir`. */
async function mountsUnder(dir: string): Promise<string[]> {
  return (await readMounts()).map((m) => m.mountPoint).filter((p) => p === dir || p.startsWith(`${dir}/`));
}

const volumeNames = (n: CsiNode) => cliJson<{ volumes: { name: string }[] }>('volume', 'list', n.pool.pool).volumes.map((v) => v.name);

test('NodePublishVolume: strictly inside the target root, no symbolic link on the way, nosuid,nodev; a failed publish leaves nothing', async () => {
  let n: CsiNode | undefined;
  try {
    n = await startCsiNode({ disks: 2 });
    const c = n.client;
    const v = (await c.controller.CreateVolume({
      name: 'pvc-t',
      capacity_range: { required_bytes: 4 * MiB },
      volume_capabilities: [MOUNT],
    })) as { volume: { volume_id: string } };
    const id = v.volume.volume_id;

    // The root itself: a volume bound over the whole kubelet directory would hide every pod's files.
    fs.writeFileSync(path.join(n.targets, 'kubelet-state'), 'x');
    const atRoot = await grpcError(c.node.NodePublishVolume({ volume_id: id, target_path: n.targets, volume_capability: MOUNT }));
    assert.equal(atRoot.code, status.INVALID_ARGUMENT);
    assert.match(atRoot.details, /strictly inside/);
    assert.equal(await optionsAt(n.targets), null);
    assert.ok(fs.existsSync(path.join(n.targets, 'kubelet-state')));

    // A symbolic link inside the root that leads out of it, as a parent or as the target itself.
    const outside = path.join(n.pool.root, 'outside');
    fs.mkdirSync(outside);
    fs.mkdirSync(path.join(n.targets, 'pods'));
    fs.symlinkSync(outside, path.join(n.targets, 'pods/evil'));
    for (const target of [path.join(n.targets, 'pods/evil/vol'), path.join(n.targets, 'pods/evil')]) {
      const r = await grpcError(c.node.NodePublishVolume({ volume_id: id, target_path: target, volume_capability: MOUNT }));
      assert.equal(r.code, status.INVALID_ARGUMENT, target);
      assert.match(r.details, /symbolic link/);
    }
    assert.deepEqual(fs.readdirSync(outside), [], 'a publish through a link created something outside the root');
    assert.deepEqual(await mountsUnder(outside), []);

    // The engine checks again as it mounts (the plugin's check can be raced): asked directly, it refuses too
    // and leaves none of the directories it would have made.
    const engineCall = (target: string, root = n?.targets as string) =>
      callControl((n as CsiNode).pool.pool, 'volume-publish', { name: 'pvc-t', target, root, readonly: false, flags: '[]' });
    await assert.rejects(engineCall(path.join(n.targets, 'pods/evil/deeper/vol')), /symbolic link/);
    await assert.rejects(engineCall(n.targets), /strictly inside/);
    await assert.rejects(engineCall(path.join(n.pool.mnt, 'pvc-t/x'), n.pool.root), /inside the DynamicFS mount/);
    assert.deepEqual(fs.readdirSync(outside), []);
    assert.deepEqual(fs.readdirSync(path.join(n.targets, 'pods')), ['evil']);
    assert.deepEqual(await mountsUnder(n.pool.root).then((l) => l.filter((p) => p !== n?.pool.mnt)), []);

    // A publish that fails (the volume was deleted in the engine under the plugin) leaves no mount and none
    // of the directories it made. (A volume's directory can no longer be removed through the mount: EBUSY.)
    await c.controller.CreateVolume({ name: 'pvc-gone', capacity_range: { required_bytes: MiB }, volume_capabilities: [MOUNT] });
    const goneDir = path.join(n.pool.mnt, 'pvc-gone');
    assert.throws(() => fs.rmdirSync(goneDir), /EBUSY/);
    await callControl(n.pool.pool, 'volume-delete', { name: 'pvc-gone' });
    const gone = await grpcError(
      c.node.NodePublishVolume({
        volume_id: 'pool:pvc-gone',
        target_path: path.join(n.targets, 'pods/g1/g2/vol'),
        volume_capability: MOUNT,
      }),
    );
    assert.notEqual(gone.code, status.OK);
    assert.ok(!fs.existsSync(path.join(n.targets, 'pods/g1')), 'a failed publish left its directories');
    assert.deepEqual(await mountsUnder(n.targets), []);

    // Published mounts are nosuid,nodev, read-only ones too; suid and dev are refused unless allowed.
    const rw = path.join(n.targets, 'pods/a/vol');
    const ro = path.join(n.targets, 'pods/b/vol');
    const noexec = path.join(n.targets, 'pods/c/vol');
    await c.node.NodePublishVolume({ volume_id: id, target_path: rw, volume_capability: MOUNT });
    await c.node.NodePublishVolume({ volume_id: id, target_path: ro, volume_capability: MOUNT, readonly: true });
    await c.node.NodePublishVolume({ volume_id: id, target_path: noexec, volume_capability: withFlags(['noexec', 'noatime']) });
    for (const [t, want] of [
      [rw, ['rw', 'nosuid', 'nodev']],
      [ro, ['ro', 'nosuid', 'nodev']],
      [noexec, ['rw', 'nosuid', 'nodev', 'noexec', 'noatime']],
    ] as const) {
      const opts = await optionsAt(t);
      for (const o of want) assert.ok(opts?.includes(o), `${t}: ${opts?.join(',')} lacks ${o}`);
    }
    for (const flags of [['suid'], ['dev'], ['nosuid,dev']]) {
      const r = await grpcError(
        c.node.NodePublishVolume({ volume_id: id, target_path: path.join(n.targets, 'pods/d/vol'), volume_capability: withFlags(flags) }),
      );
      assert.equal(r.code, status.INVALID_ARGUMENT);
      assert.match(r.details, /allowedMountOptions/);
    }
    for (const t of [rw, ro, noexec]) await c.node.NodeUnpublishVolume({ volume_id: id, target_path: t });
    assert.deepEqual(await mountsUnder(n.targets), []);

    // The cluster's operator allows suid: only then does a publication go without nosuid.
    await restartPlugin(n, ['--allow-mount-option', 'suid']);
    const suid = path.join(n.targets, 'pods/e/vol');
    await n.client.node.NodePublishVolume({ volume_id: id, target_path: suid, volume_capability: withFlags(['suid']) });
    const opts = await optionsAt(suid);
    assert.ok(opts && !opts.includes('nosuid') && opts.includes('nodev'), `allowed suid: ${opts?.join(',')}`);
    await n.client.node.NodeUnpublishVolume({ volume_id: id, target_path: suid });
  } finally {
    await stopCsiNode(n);
    if (n) cleanup(n.pool.root);
  }
});

test("NodeUnpublishVolume touches only what this driver published: another pod's tmpfs stays, engine up or down", async () => {
  let n: CsiNode | undefined;
  const tmpfs = () => path.join((n as CsiNode).targets, 'pods/other/volumes/kubernetes.io~empty-dir/cache');
  try {
    n = await startCsiNode({ disks: 2 });
    const v = (await n.client.controller.CreateVolume({
      name: 'pvc-u',
      capacity_range: { required_bytes: 4 * MiB },
      volume_capabilities: [MOUNT],
    })) as { volume: { volume_id: string } };
    fs.mkdirSync(tmpfs(), { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', tmpfs()]);
    fs.writeFileSync(path.join(tmpfs(), 'data'), 'another pod');
    await n.client.node.NodeUnpublishVolume({ volume_id: v.volume.volume_id, target_path: tmpfs() });
    assert.equal(topMountAt(await readMounts(), tmpfs())?.fstype, 'tmpfs', 'the plugin unmounted a tmpfs it never mounted');
    assert.equal(fs.readFileSync(path.join(tmpfs(), 'data'), 'utf8'), 'another pod');
    // Nor does it publish over it: a target that is another filesystem's mount point is refused.
    const over = await grpcError(
      n.client.node.NodePublishVolume({ volume_id: v.volume.volume_id, target_path: tmpfs(), volume_capability: MOUNT }),
    );
    assert.equal(over.code, status.INVALID_ARGUMENT);
    assert.match(over.details, /is the mount point of tmpfs/);
    assert.equal(topMountAt(await readMounts(), tmpfs())?.fstype, 'tmpfs');
    // A bind of the volume that no publication records (made by hand, or left by a crash) keeps it from being deleted.
    const stray = path.join(n.pool.root, 'stray');
    fs.mkdirSync(stray);
    execFileSync('mount', ['--bind', path.join(n.pool.mnt, 'pvc-u'), stray]);
    try {
      const del = await grpcError(n.client.controller.DeleteVolume({ volume_id: v.volume.volume_id }));
      assert.notEqual(del.code, status.OK, 'a volume still mounted was deleted');
      assert.match(del.details, /still mounted at .*stray/);
    } finally {
      spawnSync('umount', [stray]);
    }
    // With the engine down, the plugin unmounts dead targets itself: still only ours.
    await n.mount.kill({ detach: true });
    await n.client.node.NodeUnpublishVolume({ volume_id: v.volume.volume_id, target_path: tmpfs() });
    assert.equal(fs.readFileSync(path.join(tmpfs(), 'data'), 'utf8'), 'another pod');
    n.mount = await MountedPool.start(n.pool.pool, n.pool.mnt);
  } finally {
    spawnSync('umount', [tmpfs()]);
    await stopCsiNode(n);
    if (n) cleanup(n.pool.root);
  }
});

test('inline ephemeral volumes: off unless enabled, then held to the size, policies and pools allowed', async () => {
  let n: CsiNode | undefined;
  const inline = (extra: Record<string, string>) => ({
    'csi.storage.k8s.io/ephemeral': 'true',
    'csi.storage.k8s.io/pod.name': 'p',
    ...extra,
  });
  try {
    n = await startCsiNode({ disks: 3 });
    const t = path.join(n.targets, 'pods/e/vol');
    const off = await grpcError(
      n.client.node.NodePublishVolume({
        volume_id: 'csi-off',
        target_path: t,
        volume_capability: MOUNT,
        volume_context: inline({ size: String(MiB) }),
      }),
    );
    assert.equal(off.code, status.INVALID_ARGUMENT);
    assert.match(off.details, /disabled/);
    assert.deepEqual(volumeNames(n), []);

    await restartPlugin(n, [
      '--ephemeral',
      '--ephemeral-max-size',
      '2Mi',
      '--ephemeral-default-size',
      '1Mi',
      '--ephemeral-redundancy',
      'replication:3',
    ]);
    const refused: [Record<string, string>, RegExp][] = [
      [{ size: '120000000000' }, /more than inline volumes may have/],
      [{ size: String(3 * MiB) }, /more than inline volumes may have/],
      [{ size: '1e6' }, /not a byte count/],
      [{ redundancy: 'replication:1' }, /may not ask for redundancy replication:1/],
      [{ tier: 'hot' }, /may not ask for tier/],
      [{ pool: 'elsewhere' }, /not a pool of this node/],
      [{ replicas: '9' }, /not known for inline volumes/],
    ];
    for (const [attrs, want] of refused) {
      const r = await grpcError(
        n.client.node.NodePublishVolume({ volume_id: 'csi-bad', target_path: t, volume_capability: MOUNT, volume_context: inline(attrs) }),
      );
      assert.equal(r.code, status.INVALID_ARGUMENT, JSON.stringify(attrs));
      assert.match(r.details, want);
    }
    assert.deepEqual(volumeNames(n), [], 'a refused inline volume was created');
    // The node's only pool, chosen without being named, must be one inline volumes may use too.
    await restartPlugin(n, ['--ephemeral', '--ephemeral-pool', 'other']);
    const unnamed = await grpcError(
      n.client.node.NodePublishVolume({
        volume_id: 'csi-unnamed',
        target_path: t,
        volume_capability: MOUNT,
        volume_context: inline({ size: String(MiB) }),
      }),
    );
    assert.equal(unnamed.code, status.INVALID_ARGUMENT);
    assert.match(unnamed.details, /may not use pool 'pool'/);
    assert.deepEqual(volumeNames(n), []);
    await restartPlugin(n, [
      '--ephemeral',
      '--ephemeral-max-size',
      '2Mi',
      '--ephemeral-default-size',
      '1Mi',
      '--ephemeral-redundancy',
      'replication:3',
    ]);
    await n.client.node.NodePublishVolume({
      volume_id: 'csi-ok',
      target_path: t,
      volume_capability: MOUNT,
      volume_context: inline({ size: String(MiB), redundancy: 'replication:3' }),
    });
    const vols = cliJson<{ volumes: { capacity: number; policy: string }[] }>('volume', 'list', n.pool.pool).volumes;
    assert.deepEqual(
      vols.map((x) => [x.capacity, x.policy]),
      [[MiB, 'replication:3']],
    );
    await n.client.node.NodeUnpublishVolume({ volume_id: 'csi-ok', target_path: t });
    assert.deepEqual(volumeNames(n), []);
  } finally {
    await stopCsiNode(n);
    if (n) cleanup(n.pool.root);
  }
});

test('NodeGetVolumeStats reports the inode limit of the volume', async () => {
  let n: CsiNode | undefined;
  try {
    n = await startCsiNode({ disks: 2 });
    const v = (await n.client.controller.CreateVolume({
      name: 'pvc-i',
      capacity_range: { required_bytes: 4 * MiB },
      volume_capabilities: [MOUNT],
      parameters: { inodes: '100' },
    })) as { volume: { volume_id: string } };
    const t = path.join(n.targets, 'pods/i/vol');
    await n.client.node.NodePublishVolume({ volume_id: v.volume.volume_id, target_path: t, volume_capability: MOUNT });
    for (let i = 0; i < 9; i++) fs.writeFileSync(path.join(t, `f${i}`), '');
    const s = (await n.client.node.NodeGetVolumeStats({ volume_id: v.volume.volume_id, volume_path: t })) as {
      usage: { unit: string; total: number; used: number; available: number }[];
    };
    assert.deepEqual(
      s.usage.find((u) => u.unit === 'INODES'),
      { unit: 'INODES', total: 100, used: 10, available: 90 },
    );
    const bad = await grpcError(
      n.client.controller.CreateVolume({ name: 'pvc-j', volume_capabilities: [MOUNT], parameters: { inodes: '-1' } }),
    );
    assert.equal(bad.code, status.INVALID_ARGUMENT);
    await n.client.node.NodeUnpublishVolume({ volume_id: v.volume.volume_id, target_path: t });
  } finally {
    await stopCsiNode(n);
    if (n) cleanup(n.pool.root);
  }
});

test('the plugin starts with the flags the chart renders for every inline-volume and mount-option value', async () => {
  const r = helm([
    'template',
    'dfs',
    path.join(repo, 'charts/dynamicfs'),
    '--set',
    'csi.ephemeral.enabled=true',
    '--set',
    'csi.ephemeral.maxSize=2Gi',
    '--set',
    'csi.ephemeral.defaultSize=64Mi',
    '--set',
    'csi.ephemeral.redundancy={replication:2,erasure:2+1}',
    '--set',
    'csi.ephemeral.pools={pool}',
    '--set',
    'csi.ephemeral.tiers={hot,cold}',
    '--set',
    'csi.allowedMountOptions={suid,dev}',
  ]);
  assert.equal(r.code, 0, r.out);
  const ds = parseAllDocuments(r.out)
    .map(
      (d) =>
        d.toJS() as {
          kind?: string;
          metadata?: { name: string };
          spec?: { template: { spec: { containers: { name: string; args: string[] }[] } } };
        },
    )
    .find((o) => o?.kind === 'DaemonSet' && o.metadata?.name === 'dfs-csi');
  const args = ds?.spec?.template.spec.containers.find((c) => c.name === 'plugin')?.args ?? [];
  // The node's own flags are this test's; every policy flag is the chart's.
  const own = new Set(['--endpoint', '--pools-dir', '--target-root', '--log-format']);
  const policy = args.flatMap((a, i) => (own.has(a) || own.has(args[i - 1]) ? [] : [a]));
  assert.ok(policy.includes('--allow-mount-option') && policy.includes('--ephemeral-tier'), policy.join(' '));
  let m: CsiNode | undefined;
  try {
    m = await startCsiNode({ disks: 2, pluginArgs: policy });
    const probe = (await m.client.identity.Probe({})) as { ready: { value: boolean } };
    assert.equal(probe.ready.value, true);
  } finally {
    await stopCsiNode(m);
    if (m) cleanup(m.pool.root);
  }
});
