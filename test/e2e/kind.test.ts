import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { skipBecause } from '../helpers/skip.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

test('kind e2e (Docker hosts): image, chart, pool, pod with a PVC, data, metrics', { timeout: 1_800_000 }, (t) => {
  const has = (cmd: string, args: string[]) => spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
  const missing = ['docker', 'kind', 'helm', 'kubectl'].filter((c) => !has('sh', ['-c', `command -v ${c}`]));
  const why = missing.length
    ? `kind e2e skipped: ${missing.join(', ')} not on PATH (run test/e2e/kind/run.sh on a host with Docker and kind)`
    : !has('docker', ['info'])
      ? 'kind e2e skipped: no running Docker engine (run test/e2e/kind/run.sh on a host with one)'
      : null;
  if (why) {
    return skipBecause(t, why);
  }
  const r = spawnSync('bash', [path.join(repo, 'test/e2e/kind/run.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  assert.match(r.stdout, /kind e2e: passed/);
});
