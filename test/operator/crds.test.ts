import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { crdFiles } from '../../operator/src/api/crds.js';
import { crdReference } from '../../operator/src/api/crd-reference.js';
import { SHARED_PARENTS, SYSTEM_DIRS } from '../../operator/src/api/pool.js';
import { controlPlaneForFile } from '../helpers/control-plane.js';
import { skipBecause } from '../helpers/skip.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

test('crds/ is what the schemas generate (the config CRD spec is the engine config schema)', () => {
  const files = crdFiles();
  assert.deepEqual(fs.readdirSync(path.join(repo, 'crds')).sort(), Object.keys(files).sort());
  for (const [name, text] of Object.entries(files)) {
    assert.equal(fs.readFileSync(path.join(repo, 'crds', name), 'utf8'), text, `crds/${name} is stale: run npm run gen:crds`);
  }
  const config = parse(files['dynamicfs.io_dynamicfsconfigs.yaml']) as {
    spec: { versions: { schema: { openAPIV3Schema: { properties: { spec: { properties: Record<string, unknown> } } } } }[] };
  };
  assert.deepEqual(Object.keys(config.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties), [
    'preset',
    'storage',
    'performance',
    'reliability',
    'monitoring',
    'security',
  ]);
});

test('docs/CRDS.md is the reference generated from the CRDs', () => {
  assert.equal(fs.readFileSync(path.join(repo, 'docs/CRDS.md'), 'utf8'), crdReference(), 'docs/CRDS.md is stale: run npm run gen:crds');
});

const controlPlane = controlPlaneForFile();

test('disk paths: the API server refuses /, system directories and unnormalized paths, each with the rule it broke', (t) => {
  const cp = controlPlane();
  if (!cp) return skipBecause(t, 'kube-apiserver, etcd or kubectl is not built (test/fixtures/build needs Go and the module proxy)');
  const c = cp;
  let n = 0;
  const create = (disk: string) =>
    c.kubectlRun(
      ['create', '-f', '-'],
      stringify({
        apiVersion: 'dynamicfs.io/v1alpha1',
        kind: 'DynamicFSPool',
        metadata: { name: `p${++n}` },
        spec: { nodeName: 'n1', disks: [{ path: '/mnt/disks/ok' }, { path: disk }] },
      }),
    );
  const ROOT = /spec\.disks\[1\]\.path: Invalid value: "string": disk path must not be '\/'/;
  const NORMAL =
    /spec\.disks\[1\]\.path: Invalid value: "string": disk path must be normalized: no '\.' or '\.\.' component, no '\/\/', no trailing '\/'/;
  const SYSTEM = /spec\.disks\[1\]\.path: Invalid value: "string": disk path must not be in or at a system directory \(\/proc, \/sys, /;
  const refused: [string, RegExp][] = [
    ['/', ROOT],
    ['/mnt/disks/../etc', NORMAL],
    ['/mnt/disks/..', NORMAL],
    ['/mnt/./disks', NORMAL],
    ['/mnt//disks', NORMAL],
    ['/mnt/disks/d1/', NORMAL],
    ['/var/lib/kubelet/pods', SYSTEM],
    ['/var/lib/dynamicfs/pools/p', SYSTEM],
    ...SYSTEM_DIRS.flatMap((d): [string, RegExp][] => [
      [d, SYSTEM],
      [`${d}/x`, SYSTEM],
    ]),
    ...SHARED_PARENTS.map((d): [string, RegExp] => [d, SYSTEM]),
  ];
  const wrong: string[] = [];
  for (const [disk, message] of refused) {
    const r = create(disk);
    if (r.code === 0 || !message.test(r.out)) wrong.push(`${disk}: ${r.code === 0 ? 'accepted' : r.out.trim()}`);
  }
  assert.deepEqual(wrong, []);
  // Neighbours of the refused ones: a directory boundary is a '/', and dots inside a name are fine.
  for (const disk of [
    '/mnt/disks/d1',
    '/tmp/dfs-test/disk1',
    '/var/tmp/d',
    '/var/lib/kubelet-disks',
    '/var/lib/dfs-disks/d1',
    '/library/d',
    '/srv/a..b',
    '/data/.d',
    '/mnt/disks/d1...',
    '/data',
  ]) {
    const r = create(disk);
    assert.equal(r.code, 0, `${disk}: ${r.out}`);
  }
});
