import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildCli } from '../../engine/cli/main.js';
import { RUNBOOKS } from '../../engine/report/issues.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

test('every runbook diagnostics link to exists, has symptoms, commands and verification, and names only real commands', () => {
  const program = buildCli();
  const commands = new Set(program.commands.flatMap((c) => [c.name(), ...c.aliases()]));
  const files = Object.values(RUNBOOKS);
  assert.deepEqual(new Set(fs.readdirSync(path.join(repo, 'docs/runbooks')).map((f) => `docs/runbooks/${f}`)), new Set(files));
  for (const rel of files) {
    const text = fs.readFileSync(path.join(repo, rel), 'utf8');
    for (const heading of ['## Symptoms', '## Commands', '## Verify recovery'])
      assert.ok(text.includes(heading), `${rel} lacks '${heading}'`);
    const used = [...text.matchAll(/dynamicfs ([a-z-]+)/g)].map((x) => x[1]).filter((w) => !['diagnostics', 'pool'].includes(w));
    assert.ok(used.length >= 3, `${rel} names too few commands`);
    for (const c of used) assert.ok(commands.has(c), `${rel} names 'dynamicfs ${c}', which is not a command`);
  }
});
