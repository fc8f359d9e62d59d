import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { cleanup, cli, cliJson, tempDir } from '../helpers/env.js';

const root = tempDir('dfs-cli-');
after(() => cleanup(root));
const at = (...p: string[]) => path.join(root, ...p);

test('init, add-disk, list-disks and status with --json; exit codes 0, 1, 2', () => {
  const init = cliJson<{ pool: { poolId: string }; extentSize: number }>(
    'init',
    at('pool'),
    '--redundancy',
    'erasure:2+1',
    '--extent-size',
    '256KiB',
  );
  assert.match(init.pool.poolId, /^[0-9a-f-]{36}$/);
  assert.equal(init.extentSize, 262144);
  for (const d of ['d1', 'd2', 'd3']) {
    fs.mkdirSync(at(d));
    assert.equal(cli('add-disk', at('pool'), at(d), '--tier', 'hot', '--capacity', '1GiB', '--failure-domain', d).code, 0);
  }
  const disks = cliJson<{ disks: { id: string; tier: string; capacity: number; health: string }[] }>('list-disks', at('pool'));
  assert.equal(disks.disks.length, 3);
  assert.deepEqual(new Set(disks.disks.map((d) => `${d.tier}/${d.capacity}/${d.health}`)), new Set(['hot/1073741824/healthy']));
  const status = cliJson<{ health: string; pool: { defaultPolicy: string; extentSize: number } }>('status', at('pool'));
  assert.equal(status.health, 'healthy');
  assert.equal(status.pool.defaultPolicy, 'erasure:2+1');
  const human = cli('status', at('pool'));
  assert.equal(human.code, 0);
  assert.match(human.stdout, /health\s+HEALTHY/);
});

test('bad usage exits 2 and names what was wrong; failures exit 1; nothing is changed', () => {
  const cases: [string[], number, RegExp][] = [
    [['init', at('p2'), '--redundancy', 'raid5'], 2, /redundancy 'raid5' is not a policy/],
    [['init', at('p3'), '--extent-size', 'lots'], 2, /--extent-size: 'lots' is not a size/],
    [['init', at('p4'), '--extent-size', '1000'], 2, /multiple of 4 KiB/],
    [['add-disk', at('pool'), at('d1'), '--tier', 'lukewarm'], 2, /lukewarm/],
    [['add-disk', at('pool'), at('nowhere')], 1, /does not exist/],
    [['add-disk', at('pool'), at('d1')], 1, /already in the pool/],
    [['status', at('not-a-pool')], 1, /is not a DynamicFS pool/],
    [['set-disk-health', at('pool'), 'disk-nope', 'failed'], 1, /no disk 'disk-nope'/],
    [['set-disk-health', at('pool'), at('d1'), 'sleepy'], 2, /'sleepy' is not one of healthy/],
    [['frobnicate'], 2, /unknown command/],
    [['init'], 2, /missing required argument/],
  ];
  const before = fs.readFileSync(at('pool', 'metadata.db'));
  for (const [args, code, message] of cases) {
    const r = cli(...args);
    assert.equal(r.code, code, `${args.join(' ')}: exit ${r.code}, stderr ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
  }
  for (const p of ['p2', 'p3', 'p4']) assert.equal(fs.existsSync(at(p, 'pool.json')), false, `${p} must not be created`);
  assert.equal(cliJson<{ disks: unknown[] }>('list-disks', at('pool')).disks.length, 3);
  assert.ok(before.length > 0);
  const json = cli('status', at('not-a-pool'), '--json');
  assert.equal(JSON.parse(json.stdout).ok, false);
});

test('disk identity: a moved disk is recognised, a disk of another pool is refused', () => {
  fs.renameSync(at('d3'), at('d3-moved'));
  const moved = cliJson<{ recognised: boolean; disk: { path: string } }>('add-disk', at('pool'), at('d3-moved'));
  assert.equal(moved.recognised, true);
  assert.equal(moved.disk.path, at('d3-moved'));
  assert.equal(cli('init', at('other')).code, 0);
  const foreign = cli('add-disk', at('other'), at('d1'));
  assert.equal(foreign.code, 1);
  assert.match(foreign.stderr, /belongs to another pool/);
  const transitions = cli('set-disk-health', at('pool'), at('d1'), 'suspect', '--reason', 'slow replies');
  assert.equal(transitions.code, 0);
  const d1 = cliJson<{ disks: { path: string; health: string; healthReason: string; recentTransitions: { to: string }[] }[] }>(
    'list-disks',
    at('pool'),
  ).disks.find((d) => d.path === at('d1'));
  assert.equal(d1?.health, 'suspect');
  assert.equal(d1?.healthReason, 'slow replies');
  assert.equal(d1?.recentTransitions[0].to, 'suspect');
});

test('--config reads pool settings from YAML and rejects unknown fields', () => {
  fs.writeFileSync(at('good.yaml'), 'storage:\n  extent_size: 512KiB\n  redundancy: replication:3\n  checksum: crc32c\n');
  const r = cliJson<{ extentSize: number; checksum: string; redundancy: string }>('init', at('cfgpool'), '--config', at('good.yaml'));
  assert.deepEqual([r.extentSize, r.checksum, r.redundancy], [524288, 'crc32c', 'replication:3']);
  fs.writeFileSync(at('bad.yaml'), 'storage:\n  extent_sise: 1MiB\n');
  const bad = cli('init', at('cfgpool2'), '--config', at('bad.yaml'));
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /storage\.extent_sise: got "1MiB", expected no such field \(known here: extent_size,/);
});

test('tune shows and changes self-healing settings; bad values are refused and change nothing', () => {
  const before = cliJson<{ autoRebuild: boolean; thresholds: { slowIoMs: number } }>('tune', at('pool'));
  assert.equal(before.autoRebuild, true);
  const after = cliJson<{
    autoRebuild: boolean;
    rebuild: { concurrency: number; bandwidthBytes?: number };
    thresholds: { slowIoMs: number; errorsSuspect: number };
  }>('tune', at('pool'), '--auto-rebuild', 'off', '--rebuild-concurrency', '3', '--rebuild-bandwidth', '64MiB', '--slow-io-ms', '750');
  assert.deepEqual(
    [after.autoRebuild, after.rebuild.concurrency, after.rebuild.bandwidthBytes, after.thresholds.slowIoMs, after.thresholds.errorsSuspect],
    [false, 3, 64 << 20, 750, 3],
  );
  const bad = cli('tune', at('pool'), '--auto-rebuild', 'on', '--rebuild-concurrency', '500');
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--rebuild-concurrency must be a whole number from 1 to 64, got 500/);
  const unchanged = cliJson<{ autoRebuild: boolean; rebuild: { concurrency: number } }>('tune', at('pool'));
  assert.deepEqual([unchanged.autoRebuild, unchanged.rebuild.concurrency], [false, 3]);
});
