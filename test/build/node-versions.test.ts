import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { cleanup, tempDir } from '../helpers/env.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const read = (f: string) => fs.readFileSync(path.join(repo, f), 'utf8');
const root = tempDir('dfs-bin-');
after(() => cleanup(root));

test('Node versions: the suite runs on the LTS the images ship; engines starts at the oldest version the unit tests run on', () => {
  const deps = read('scripts/lib/ensure-deps.sh');
  const lts = /^NODE_LTS=(\d+)\.\d+\.\d+$/m.exec(deps)?.[1];
  const oldest = /^NODE_OLDEST=(\d+\.\d+\.\d+)$/m.exec(deps)?.[1];
  assert.ok(lts && oldest, 'scripts/lib/ensure-deps.sh names NODE_LTS and NODE_OLDEST');
  assert.equal(/^ARG NODE_VERSION=(\d+)$/m.exec(read('Dockerfile'))?.[1], lts, 'the images ship the LTS the suite runs on');
  assert.equal(process.versions.node.split('.')[0], lts, 'the suite runs on the LTS the images ship (run it with scripts/test.sh)');
  const engines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node;
  assert.equal(engines, `>=${oldest}`, 'package.json engines: from the oldest supported Node, the one the unit tests run on');
  const readme = read('README.md');
  for (const v of [oldest, `Node ${lts}`]) assert.ok(readme.includes(v), `README names ${v}`);
});

test('bin/*: "#!/usr/bin/env node" finds the Node that runs the tests, and every entry point runs on it', () => {
  const env = spawnSync('/usr/bin/env', ['node', '-p', 'process.execPath'], { encoding: 'utf8' });
  assert.equal(fs.realpathSync(env.stdout.trim()), fs.realpathSync(process.execPath), 'node on PATH is the Node that runs the tests');
  const run = (bin: string, ...args: string[]) => spawnSync(path.join(repo, 'bin', bin), args, { encoding: 'utf8', timeout: 60_000 });
  // init opens the pool's metadata database: the native modules load on this Node.
  const pool = path.join(root, 'pool');
  const init = run('dynamicfs', 'init', pool, '--redundancy', 'replication:1', '--json');
  assert.equal(init.status, 0, init.stderr);
  const disks = run('dynamicfs', 'list-disks', pool, '--json');
  assert.equal(disks.status, 0, disks.stderr);
  assert.deepEqual((JSON.parse(disks.stdout) as { disks: unknown[] }).disks, []);
  for (const bin of ['dynamicfs-csi', 'dynamicfs-operator']) {
    const help = run(bin, '--help');
    assert.equal(help.status, 0, help.stderr);
    assert.match(help.stdout, new RegExp(`Usage: ${bin}`));
  }
});
