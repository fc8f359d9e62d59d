import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { cleanup, cli, makePool, MountedPool, patternBytes, rng, type TestPool } from '../helpers/env.js';

const WORKLOAD = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/crash-workload.js');
const ROUNDS = Number(process.env.DFS_CRASH_ROUNDS ?? 20);
const SEED = Number(process.env.DFS_CRASH_SEED ?? Date.now() % 100_000);

let p: TestPool;
after(() => p && cleanup(p.root));

interface Expectation {
  versions: { seed: number; size: number }[];
  settled: boolean;
}

/** What each file may hold after a crash, from the workload's log of fsync'ed states. */
function expectations(logText: string): Map<string, Expectation> {
  const files = new Map<string, Expectation>();
  for (const line of logText.split('\n').filter(Boolean)) {
    const [kind, id, seed, size] = line.split(' ');
    if (kind === 'new') files.set(id, { versions: [{ seed: Number(seed), size: Number(size) }], settled: true });
    else if (kind === 'intent') {
      const e = files.get(id) as Expectation;
      e.versions = [e.versions[e.versions.length - 1], { seed: Number(seed), size: Number(size) }];
      e.settled = false;
    } else if (kind === 'done') {
      const e = files.get(id) as Expectation;
      e.versions = [e.versions[e.versions.length - 1]];
      e.settled = true;
    }
  }
  return files;
}

test(`kill -9 during a write workload, ${ROUNDS} rounds: fsync'ed files intact, renames atomic, fsck clean (seed ${SEED})`, async () => {
  p = await makePool({ redundancy: 'erasure:2+1', disks: 3, extentSize: 64 * 1024 });
  const random = rng(SEED);
  const logFile = path.join(p.root, 'workload.log');
  let checkedFiles = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const m = await MountedPool.start(p.pool, p.mnt);
    const workload = spawn(process.execPath, [WORKLOAD, path.join(p.mnt, 'w'), logFile, String(SEED * 100 + round)], { stdio: 'ignore' });
    await new Promise((r) => setTimeout(r, 150 + random() * 900));
    await m.kill({ detach: false }); // the daemon dies mid-operation, like a power cut for everything not yet fsync'ed
    workload.kill('SIGKILL');
    await new Promise((r) => (workload.exitCode !== null || workload.signalCode !== null ? r(null) : workload.once('exit', r)));
    await m.detach(); // only now: a still-running writer must not fall through to the directory underneath

    const check = cli('fsck', p.pool, '--json');
    assert.equal(check.code, 0, `round ${round}: fsck after crash: ${check.stdout}${check.stderr}`);

    const m2 = await MountedPool.start(p.pool, p.mnt);
    try {
      // No log yet: the workload was killed before it fsync'ed anything (a short first round on a busy machine).
      const logText = fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8') : '';
      for (const [id, e] of expectations(logText)) {
        const file = path.join(p.mnt, 'w', id);
        const data = fs.readFileSync(file);
        const ok = e.versions.some((v) => v.size === data.length && data.equals(patternBytes(v.seed, v.size)));
        assert.ok(
          ok,
          `round ${round}: ${id} holds ${data.length} bytes matching none of its fsync'ed versions (${JSON.stringify(e.versions)})`,
        );
        checkedFiles++;
      }
      // Leftover temporary files from the interrupted round are fine; remove them like an application would.
      const dir = path.join(p.mnt, 'w');
      for (const f of fs.existsSync(dir) ? fs.readdirSync(dir) : []) if (f.endsWith('.tmp')) fs.rmSync(path.join(dir, f));
    } finally {
      assert.equal(await m2.stop(), 0);
    }
  }
  assert.ok(checkedFiles > ROUNDS * 2, `only ${checkedFiles} file checks over ${ROUNDS} rounds: the workload did too little`);
  const finalCheck = cli('fsck', p.pool);
  assert.equal(finalCheck.code, 0, finalCheck.stdout);
});
