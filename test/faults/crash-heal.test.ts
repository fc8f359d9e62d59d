import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { PoolStatus } from '../../engine/report/status.js';
import type { RebuildReport } from '../../engine/heal/rebuild.js';
import type { ScrubReport } from '../../engine/heal/scrub.js';
import { cleanup, CLI, cli, cliJson, makePool, MountedPool, patternBytes, rng, writeSamples, type TestPool } from '../helpers/env.js';

const ROUNDS = Number(process.env.DFS_CRASH_HEAL_ROUNDS ?? 10);
const SEED = Number(process.env.DFS_CRASH_SEED ?? Date.now() % 100_000);
const FILES = Array.from({ length: 10 }, (_, i) => ({ name: `f${i}`, seed: 2100 + i, size: 150_000 + i * 70_001 }));

function readsBack(mnt: string): void {
  for (const f of FILES) assert.ok(fs.readFileSync(path.join(mnt, f.name)).equals(patternBytes(f.seed, f.size)), `${f.name} reads wrong`);
}

/** Starts a CLI command (served by the daemon) and kills the daemon -9 while it runs. */
async function crashDuring(p: TestPool, m: MountedPool, args: string[], delayMs: number): Promise<void> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, delayMs));
  await m.kill();
  child.kill('SIGKILL');
  await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.once('exit', r)));
  const check = cli('fsck', p.pool, '--json');
  assert.equal(check.code, 0, `fsck after a crash: ${check.stdout}`);
}

test(`kill -9 during rebuild, ${ROUNDS} rounds: it resumes and nothing is lost (seed ${SEED})`, async () => {
  const p = await makePool({ redundancy: 'replication:2', disks: 4, extentSize: 64 * 1024 });
  const random = rng(SEED);
  try {
    await writeSamples(p, FILES);
    for (let round = 0; round < ROUNDS; round++) {
      const victim = p.disks[round % p.disks.length];
      let m = await MountedPool.start(p.pool, p.mnt);
      assert.equal(cli('set-disk-health', p.pool, victim, 'failed', '--reason', `round ${round}`).code, 0);
      await crashDuring(p, m, ['rebuild', p.pool], 20 + random() * 300);
      m = await MountedPool.start(p.pool, p.mnt);
      try {
        readsBack(p.mnt);
        const r = cliJson<RebuildReport>('rebuild', p.pool); // resumes: only what is still unprotected
        assert.equal(r.extents.failed, 0, `round ${round}: ${JSON.stringify(r.failures)}`);
        const s = cliJson<PoolStatus>('status', p.pool);
        assert.equal(s.extents.healthy, s.extents.total, `round ${round}: not fully protected after the resumed rebuild`);
        readsBack(p.mnt);
        assert.equal(cli('probe-disks', p.pool).code, 0);
        assert.equal(cli('set-disk-health', p.pool, victim, 'healthy', '--reason', 'back').code, 0);
      } finally {
        assert.equal(await m.stop(), 0);
      }
    }
  } finally {
    cleanup(p.root);
  }
});

test(`kill -9 during scrub --repair, ${ROUNDS} rounds: it resumes and nothing is lost (seed ${SEED})`, async () => {
  const p = await makePool({ redundancy: 'erasure:2+1', disks: 3, extentSize: 64 * 1024 });
  const random = rng(SEED + 1);
  try {
    await writeSamples(p, FILES);
    for (let round = 0; round < ROUNDS; round++) {
      // Rot one fragment in a few extents (2+1 tolerates one per extent).
      const dirs = p.disks.map((d) => path.join(d, 'dynamicfs', 'fragments'));
      const byEid = new Map<string, string[]>();
      for (const d of dirs)
        for (const sub of fs.readdirSync(d))
          for (const name of fs.readdirSync(path.join(d, sub))) {
            const eid = name.split('.')[0];
            byEid.set(eid, [...(byEid.get(eid) ?? []), path.join(d, sub, name)]);
          }
      const eids = [...byEid.keys()];
      for (let i = 0; i < 6; i++) {
        const files = byEid.get(eids[Math.floor(random() * eids.length)]) as string[];
        const victim = files[Math.floor(random() * files.length)];
        const data = fs.readFileSync(victim);
        data[Math.floor(random() * data.length)] ^= 0xff;
        fs.writeFileSync(victim, data);
        byEid.delete(path.basename(victim).split('.')[0]);
        eids.splice(eids.indexOf(path.basename(victim).split('.')[0]), 1);
      }
      let m = await MountedPool.start(p.pool, p.mnt);
      await crashDuring(p, m, ['scrub', p.pool, '--repair'], 20 + random() * 200);
      m = await MountedPool.start(p.pool, p.mnt);
      try {
        readsBack(p.mnt);
        const repaired = cliJson<ScrubReport>('scrub', p.pool, '--repair');
        assert.equal(repaired.extents.unrecoverable, 0);
        assert.ok(
          repaired.issues.every((i) => i.repaired),
          `round ${round}: ${JSON.stringify(repaired.issues.filter((i) => !i.repaired))}`,
        );
        const clean = cliJson<ScrubReport>('scrub', p.pool);
        assert.equal(clean.issues.length, 0, `round ${round}: scrub after repair is not clean`);
        readsBack(p.mnt);
      } finally {
        assert.equal(await m.stop(), 0);
      }
    }
  } finally {
    cleanup(p.root);
  }
});
