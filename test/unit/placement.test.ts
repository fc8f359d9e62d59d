import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Disk } from '../../engine/pool/disk-set.js';
import { chooseDisks } from '../../engine/pool/placement.js';
import { rng } from '../helpers/env.js';

function disk(id: string, cap: number, used = 0, health: Disk['health'] = 'healthy'): Disk {
  return {
    id, path: `/d/${id}`, tier: 'warm', cap, health, healthReason: '', healthChangedAt: 0, used, fsFree: 1e15, fsTotal: 1e15,
    reserved: 0, readErrors: 0, writeErrors: 0, checksumErrors: 0, addedAt: 0,
  };
}

test('fragments of one extent land on distinct disks', () => {
  const disks = ['a', 'b', 'c', 'd', 'e', 'f'].map((id) => disk(id, 1e9));
  const random = rng(7);
  for (let i = 0; i < 500; i++) {
    const chosen = chooseDisks(disks, 6, 1000, 'erasure:4+2', random);
    assert.equal(new Set(chosen.map((d) => d.id)).size, 6);
  }
});

test('mixed sizes fill in proportion to free space', () => {
  const disks = [disk('small', 1e9), disk('big', 3e9), disk('mid', 2e9)];
  const counts = new Map<string, number>();
  const random = rng(42);
  for (let i = 0; i < 6000; i++) {
    const [d] = chooseDisks(disks, 1, 1000, 'replication:1', random);
    counts.set(d.id, (counts.get(d.id) ?? 0) + 1);
  }
  const share = (id: string) => (counts.get(id) ?? 0) / 6000;
  assert.ok(Math.abs(share('small') - 1 / 6) < 0.03, `small got ${share('small')}`);
  assert.ok(Math.abs(share('mid') - 2 / 6) < 0.03, `mid got ${share('mid')}`);
  assert.ok(Math.abs(share('big') - 3 / 6) < 0.03, `big got ${share('big')}`);
});

test('a policy wider than the disks with room fails with ENOSPC naming the policy', () => {
  const disks = [disk('a', 1e9), disk('b', 1e9), disk('full', 1000, 1000)];
  assert.throws(() => chooseDisks(disks, 3, 100, 'replication:3'), (e: Error & { code?: string }) => e.code === 'ENOSPC' && /replication:3 needs 3 distinct disks but only 2 healthy disks have room/.test(e.message));
  assert.throws(() => chooseDisks(disks.slice(0, 2), 3, 100, 'replication:3'), /pool has 2 healthy disks/);
  // A full disk is skipped rather than overfilled.
  const chosen = chooseDisks(disks, 2, 100, 'replication:2');
  assert.ok(!chosen.some((d) => d.id === 'full'));
});
