import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { DynamicFSPool } from '../../operator/src/api/pool.js';
import { csiClient } from '../helpers/csi-client.js';
import { cli, cliJson, eventually } from '../helpers/env.js';
import { LocalCluster } from '../helpers/local-cluster.js';
import { skipBecause } from '../helpers/skip.js';

const NODE = 'e2e-node';

test(
  'end to end on a local control plane: pool Ready, a PVC binds through the external-provisioner, a volume is used, survives a disk failure, and is freed',
  { timeout: 600_000 },
  async (t) => {
    const c = await LocalCluster.start(NODE);
    if (!c) {
      const why =
        'kube-apiserver, etcd, kube-controller-manager, kubectl or csi-provisioner is not built (test/fixtures/build needs Go and the module proxy)';
      if (process.env.CI) assert.fail(why);
      return skipBecause(t, why);
    }
    const client = csiClient(c.csiSocket);
    try {
      const disks = [1, 2, 3].map((i) => path.join(c.root, `disk${i}`));
      c.cp.kubectlRun(
        ['apply', '-f', '-'],
        `apiVersion: dynamicfs.io/v1alpha1
kind: DynamicFSConfig
metadata: {name: e2e}
spec:
  preset: production
  reliability: {auto_rebuild: false, auto_scrub: false}
---
apiVersion: dynamicfs.io/v1alpha1
kind: DynamicFSPool
metadata: {name: e2e}
spec:
  nodeName: ${NODE}
  configRef: e2e
  redundancy: replication:2
  extentSize: 64Ki
  disks:
${disks.map((d) => `    - {path: ${d}, capacity: 256Mi, failureDomain: ${path.basename(d)}}`).join('\n')}
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata: {name: dynamicfs-e2e}
provisioner: csi.dynamicfs.io
volumeBindingMode: WaitForFirstConsumer
allowVolumeExpansion: true
reclaimPolicy: Delete
parameters: {pool: e2e, redundancy: "replication:2"}
`,
      );
      c.kubectl('wait', '--for=condition=Ready', 'dynamicfspool/e2e', '--timeout=90s');

      // A claim, with the node the scheduler would have picked.
      c.cp.kubectlRun(
        ['apply', '-f', '-'],
        `apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
  namespace: default
  annotations: {volume.kubernetes.io/selected-node: ${NODE}}
spec:
  accessModes: [ReadWriteOnce]
  storageClassName: dynamicfs-e2e
  resources: {requests: {storage: 8Mi}}
`,
      );
      c.kubectl('wait', '--for=jsonpath={.status.phase}=Bound', 'pvc/data', '-n', 'default', '--timeout=120s');
      const pvName = c.kubectl('get', 'pvc', 'data', '-n', 'default', '-o', 'jsonpath={.spec.volumeName}').trim();
      const pv = JSON.parse(c.kubectl('get', 'pv', pvName, '-o', 'json')) as {
        spec: {
          csi: { volumeHandle: string; driver: string };
          nodeAffinity: { required: { nodeSelectorTerms: { matchExpressions: { key: string; values: string[] }[] }[] } };
          capacity: { storage: string };
        };
      };
      assert.equal(pv.spec.csi.driver, 'csi.dynamicfs.io');
      assert.deepEqual(pv.spec.nodeAffinity.required.nodeSelectorTerms[0].matchExpressions[0], {
        key: 'topology.dynamicfs.io/node',
        operator: 'In',
        values: [NODE],
      });
      const volumeId = pv.spec.csi.volumeHandle;
      const poolDir = path.join(c.stateDir, 'pools/e2e');
      assert.ok(cliJson<{ volumes: { name: string }[] }>('volume', 'list', poolDir).volumes.some((v) => `e2e:${v.name}` === volumeId));

      // Published as kubelet would; used by a child process as a pod would.
      const target = path.join(c.kubeletDir, `pods/p1/volumes/kubernetes.io~csi/${pvName}/mount`);
      const cap = { mount: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
      await client.node.NodePublishVolume({ volume_id: volumeId, target_path: target, volume_capability: cap });
      const w = spawnSync('sh', ['-c', `head -c 2000000 /dev/urandom > ${target}/blob && sha256sum ${target}/blob`], { encoding: 'utf8' });
      assert.equal(w.status, 0, w.stderr);
      const sum = w.stdout.split(' ')[0];

      // A disk fails: the pool turns Degraded, the volume abnormal; a requested rebuild fixes it.
      const pool = () => JSON.parse(c.kubectl('get', 'dfp', 'e2e', '-o', 'json')) as DynamicFSPool;
      const cond = (type: string) => pool().status?.conditions?.find((x) => x.type === type);
      const diskId = pool().status?.disks?.[0].id as string;
      assert.equal(cli('set-disk-health', poolDir, diskId, 'failed').code, 0);
      await eventually('Degraded=True', () => (cond('Degraded')?.status === 'True' ? true : undefined), 30_000);
      const stats = (await client.node.NodeGetVolumeStats({ volume_id: volumeId, volume_path: target })) as {
        volume_condition: { abnormal: boolean; message: string };
      };
      assert.equal(stats.volume_condition.abnormal, true, stats.volume_condition.message);
      c.kubectl('patch', 'dfp', 'e2e', '--type=merge', '-p', '{"spec":{"requests":{"rebuild":"r1"}}}');
      await eventually(
        'the rebuild',
        () => (pool().status?.acknowledged?.rebuild === 'r1' && pool().status?.extents?.degraded === 0 ? true : undefined),
        60_000,
      );
      const healed = (await client.node.NodeGetVolumeStats({ volume_id: volumeId, volume_path: target })) as {
        volume_condition: { abnormal: boolean };
      };
      assert.equal(healed.volume_condition.abnormal, false);
      assert.equal(cond('Ready')?.status, 'True');
      assert.equal(spawnSync('sh', ['-c', `sha256sum ${target}/blob`], { encoding: 'utf8' }).stdout.split(' ')[0], sum);

      // Unpublish, delete the claim: the provisioner deletes the volume and its data.
      await client.node.NodeUnpublishVolume({ volume_id: volumeId, target_path: target });
      c.kubectl('delete', 'pvc', 'data', '-n', 'default');
      await eventually(
        'the volume freed',
        () => (cliJson<{ volumes: unknown[] }>('volume', 'list', poolDir).volumes.length === 0 ? true : undefined),
        60_000,
      );
      await eventually('the PV gone', () => (c.cp.kubectlRun(['get', 'pv', pvName]).code !== 0 ? true : undefined), 60_000);
      assert.ok(!fs.existsSync(target));
    } catch (err) {
      (err as Error).message += `\n${c.logs()}`;
      throw err;
    } finally {
      client.close();
      await c.stop();
    }
  },
);
