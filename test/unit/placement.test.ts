import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Disk } from '../../engine/pool/disk-set.js';
import { chooseDisks } from '../../engine/pool/placement.js';
import { rawSpace, usableSpace } from '../../engine/pool/capacity.js';
import { groupDomains } from '../../engine/pool/failure-domain.js';
import { parsePolicy } from '../../engine/redundancy/policy.js';
import { rng } from '../helpers/env.js';

function disk(id: string, cap: number, used = 0, health: Disk['health'] = 'healthy', domain = `block:${id}`, fs = `dev:${id}`): Disk {
  return {
    id,
    path: `/d/${id}`,
    tier: 'warm',
    cap,
    health,
    healthReason: '',
    healthChangedAt: 0,
    used,
    fsFree: 1e15,
    fsTotal: 1e15,
    reserved: 0,
    fsReserved: 0,
    readErrors: 0,
    writeErrors: 0,
    checksumErrors: 0,
    addedAt: 0,
    domain,
    domainOverride: null,
    device: id,
    fs,
    deviceWarning: null,
  };
}

test('fragments of one extent land on distinct disks', () => {
  const disks = ['a', 'b', 'c', 'd', 'e', 'f'].map((id) => disk(id, 1e9));
  const random = rng(7);
  for (let i = 0; i < 500; i++) {
    const chosen = chooseDisks(disks, 6, 1000, 'erasure:4+2', { random });
    assert.equal(new Set(chosen.map((d) => d.id)).size, 6);
  }
});

test('mixed sizes fill in proportion to free space', () => {
  const disks = [disk('small', 1e9), disk('big', 3e9), disk('mid', 2e9)];
  const counts = new Map<string, number>();
  const random = rng(42);
  for (let i = 0; i < 6000; i++) {
    const [d] = chooseDisks(disks, 1, 1000, 'replication:1', { random });
    counts.set(d.id, (counts.get(d.id) ?? 0) + 1);
  }
  const share = (id: string) => (counts.get(id) ?? 0) / 6000;
  assert.ok(Math.abs(share('small') - 1 / 6) < 0.03, `small got ${share('small')}`);
  assert.ok(Math.abs(share('mid') - 2 / 6) < 0.03, `mid got ${share('mid')}`);
  assert.ok(Math.abs(share('big') - 3 / 6) < 0.03, `big got ${share('big')}`);
});

test('a policy wider than the disks with room fails with ENOSPC naming the policy', () => {
  const disks = [disk('a', 1e9), disk('b', 1e9), disk('full', 1000, 1000)];
  assert.throws(
    () => chooseDisks(disks, 3, 100, 'replication:3'),
    (e: Error & { code?: string }) =>
      e.code === 'ENOSPC' && /replication:3 needs 3 distinct disks but only 2 healthy disks have room/.test(e.message),
  );
  assert.throws(() => chooseDisks(disks.slice(0, 2), 3, 100, 'replication:3'), /pool has 2 healthy disks/);
  // A full disk is skipped rather than overfilled.
  const chosen = chooseDisks(disks, 2, 100, 'replication:2');
  assert.ok(!chosen.some((d) => d.id === 'full'));
});

test('fragments of one extent land in distinct failure domains; too few domains is ENOSPC naming them, unless shared domains are allowed', () => {
  // Three disks on vda (one filesystem), one on vdb.
  const disks = [
    disk('a', 1e9, 0, 'healthy', 'block:vda', 'dev:254:0'),
    disk('b', 1e9, 0, 'healthy', 'block:vda', 'dev:254:0'),
    disk('c', 1e9, 0, 'healthy', 'block:vda', 'dev:254:0'),
    disk('d', 1e9, 0, 'healthy', 'block:vdb', 'dev:254:16'),
  ];
  const random = rng(3);
  for (let i = 0; i < 300; i++) {
    const chosen = chooseDisks(disks, 2, 1000, 'replication:2', { random });
    assert.equal(new Set(chosen.map((x) => x.domain)).size, 2, `two copies in one domain: ${chosen.map((x) => x.id)}`);
  }
  assert.throws(
    () => chooseDisks(disks, 3, 1000, 'replication:3'),
    (e: Error & { code?: string }) =>
      e.code === 'ENOSPC' &&
      /replication:3 needs 3 failure domains but the healthy disks with room are in 2: vda \(a, b, c\), vdb \(d\)/.test(e.message),
  );
  // Allowed: distinct domains first, then the other disks.
  for (let i = 0; i < 100; i++) {
    const chosen = chooseDisks(disks, 3, 1000, 'replication:3', { random, sharedDomains: true });
    assert.equal(new Set(chosen.map((x) => x.id)).size, 3);
    assert.ok(
      chosen.some((x) => x.id === 'd'),
      'the other domain was not used first',
    );
  }
});

test('capacity: one filesystem counted once, caps still apply; usable space follows the domains', () => {
  const GB = 1e9;
  const onVda = (id: string, cap: number | null) => ({
    ...disk(id, 0, 0, 'healthy', 'block:vda', 'dev:254:0'),
    cap,
    fsTotal: 100 * GB,
    fsFree: 60 * GB,
  });
  // Three directories of one 100 GB filesystem: 100 GB, not 300; 60 GB free, not 180.
  assert.deepEqual(rawSpace([onVda('a', null), onVda('b', null), onVda('c', null)]), { capacity: 100 * GB, free: 60 * GB });
  // Caps below the filesystem: their sum.
  assert.deepEqual(rawSpace([onVda('a', 10 * GB), onVda('b', 20 * GB)]), { capacity: 30 * GB, free: 30 * GB });
  const vdb = { ...disk('d', 0, 0, 'healthy', 'block:vdb', 'dev:254:16'), cap: null, fsTotal: 10 * GB, fsFree: 10 * GB };
  const all = [onVda('a', null), onVda('b', null), vdb];
  // replication:2 with one copy per domain: the small domain bounds it (10 GB), not half of 70 GB.
  assert.deepEqual(usableSpace(all, parsePolicy('replication:2'), false), { capacity: 10 * GB, free: 10 * GB });
  assert.deepEqual(usableSpace(all, parsePolicy('replication:3'), false), { capacity: 0, free: 0 });
  // Shared domains allowed: raw space scaled by the policy's overhead.
  assert.deepEqual(usableSpace(all, parsePolicy('replication:2'), true), { capacity: 55 * GB, free: 35 * GB });
  // erasure 2+1 over three equal domains: two thirds of the raw space.
  const three = ['x', 'y', 'z'].map((id) => ({ ...disk(id, 0), cap: null, fsTotal: 30 * GB, fsFree: 30 * GB }));
  const ec = usableSpace(three, parsePolicy('erasure:2+1'), false);
  assert.ok(Math.abs(ec.capacity - 60 * GB) < 10, `${ec.capacity}`);
});

test('failure domains: disks sharing a device group together, transitively; a named domain replaces what was found', () => {
  const probe = (units: string[]) => ({ units, label: units.join('+'), fs: units[0] });
  const domains = groupDomains([
    { id: 'a', override: null, probe: probe(['block:sda']) },
    { id: 'b', override: null, probe: probe(['block:sda']) },
    { id: 'md', override: null, probe: probe(['block:sdb', 'block:sdc']) },
    { id: 'c', override: null, probe: probe(['block:sdc']) },
    { id: 'e', override: null, probe: probe(['block:sdd']) },
    { id: 'f', override: 'shelf-2', probe: probe(['block:sdd']) },
    { id: 'g', override: null, probe: null },
  ]);
  assert.equal(domains.get('a'), domains.get('b'));
  assert.equal(domains.get('md'), domains.get('c'), 'an md device and a disk of its members share a domain');
  assert.notEqual(domains.get('a'), domains.get('c'));
  assert.notEqual(domains.get('e'), domains.get('f'), 'a named domain is its own');
  assert.equal(domains.get('f'), 'named:shelf-2');
  assert.equal(domains.get('g'), 'disk:g', 'a disk that could not be probed is a domain of its own');
});
