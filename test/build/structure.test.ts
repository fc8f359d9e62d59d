import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { TIERS } from '../../engine/config/rules.js';
import { POLICY_PATTERN } from '../../engine/redundancy/policy.js';

/**
 * The engine's structure, checked: its layers only point down, no SQL outside metadata/, no untyped
 * control calls. The layer check is dependency-cruiser with the repository's own rules
 * (.dependency-cruiser.cjs); the tests below also plant violations to show that it fails on them.
 */
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const depcruise = path.join(repo, 'node_modules/.bin/depcruise');

function cruise(cwd: string, ...dirs: string[]): { code: number; out: string } {
  const r = spawnSync(depcruise, ['--config', '.dependency-cruiser.cjs', ...dirs], { cwd, encoding: 'utf8' });
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** A small engine tree in a temporary directory, checked with the repository's rules. */
function plant(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dfs-layers-'));
  fs.copyFileSync(path.join(repo, '.dependency-cruiser.cjs'), path.join(dir, '.dependency-cruiser.cjs'));
  fs.writeFileSync(
    path.join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }),
  );
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), text);
  }
  return dir;
}

function sources(...roots: string[]): { file: string; text: string }[] {
  const out: { file: string; text: string }[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) out.push({ file: path.relative(repo, p), text: fs.readFileSync(p, 'utf8') });
    }
  };
  for (const r of roots) walk(path.join(repo, r));
  return out;
}

test('the engine, the CSI driver and the operator pass the layer rules: no cycle, no upward import', () => {
  const r = cruise(repo, 'engine', 'csi-driver/src', 'operator/src');
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /no dependency violations found/);
});

test('the layer check fails on an upward import, a cycle, a sideways import, and a folder without a layer', () => {
  const dir = plant({
    'engine/util/low.ts': "import { high } from '../pool/high.js';\nexport const low = high + 1;\n",
    'engine/pool/high.ts': "import { loose } from '../loose/loose.js';\nexport const high = loose;\n",
    'engine/fs/a.ts': "import { b } from './b.js';\nexport const a = () => b;\n",
    'engine/fs/b.ts': "import { a } from './a.js';\nexport const b = () => a;\n",
    'engine/newfolder/x.ts': "import { high } from '../pool/high.js';\nexport const x = high;\n",
    'engine/loose/loose.ts': 'export const loose = 1;\n',
    'engine/integrity/sum.ts': "import { policy } from '../redundancy/policy.js';\nexport const sum = policy;\n",
    'engine/redundancy/policy.ts': 'export const policy = 1;\n',
  });
  try {
    const r = cruise(dir, 'engine');
    assert.notEqual(r.code, 0, r.out);
    assert.match(r.out, /no-upward-from-util: engine\/util\/low\.ts → engine\/pool\/high\.ts/);
    assert.match(r.out, /no-circular: engine\/fs\/a\.ts/);
    assert.match(r.out, /every-folder-has-a-layer: engine\/newfolder\/x\.ts/);
    assert.match(r.out, /every-imported-folder-has-a-layer: engine\/pool\/high\.ts → engine\/loose\/loose\.ts/);
    assert.match(r.out, /no-sideways-from-integrity: engine\/integrity\/sum\.ts → engine\/redundancy\/policy\.ts/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

/** SQL statements and direct database handles: only engine/metadata/ holds them. */
const SQL =
  /\.db\b\s*[.)]|\.(prepare|pragma)\(|\b(SELECT\s+[\w*(]|INSERT\s+(OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX))/;

test('no SQL outside engine/metadata/', () => {
  const offenders = sources('engine', 'csi-driver/src', 'operator/src')
    .filter((s) => !s.file.startsWith('engine/metadata/'))
    .flatMap((s) => s.text.split('\n').flatMap((line, i) => (SQL.test(line) ? [`${s.file}:${i + 1}: ${line.trim()}`] : [])));
  assert.deepEqual(offenders, []);
  // The pattern finds what it is for.
  assert.ok(SQL.test("store.db.prepare('SELECT count(*) AS n FROM extents')"));
  assert.ok(SQL.test("x.run('DELETE FROM publications WHERE target = ?')"));
  assert.ok(!SQL.test('select the disks that are healthy'));
});

test('control calls are typed: no Promise<unknown> command tables or callers', () => {
  const offenders = sources('engine/control', 'engine/cli', 'csi-driver/src', 'operator/src').flatMap((s) =>
    s.text.split('\n').flatMap((line, i) => (/Promise<unknown>/.test(line) ? [`${s.file}:${i + 1}: ${line.trim()}`] : [])),
  );
  assert.deepEqual(offenders, []);
});

test("rules said once: the chart's values schema states the policy pattern and the tiers as the engine exports them", () => {
  const schema = fs.readFileSync(path.join(repo, 'charts/dynamicfs/values.schema.json'), 'utf8');
  const patterns: string[] = [];
  const tierLists: string[][] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>;
      if (typeof o.pattern === 'string' && /replication|erasure/.test(o.pattern)) patterns.push(o.pattern);
      if (Array.isArray(o.enum) && o.enum.includes('hot')) tierLists.push(o.enum as string[]);
      Object.values(o).forEach(walk);
    }
  };
  walk(JSON.parse(schema));
  assert.ok(patterns.length >= 2 && tierLists.length >= 2, `found ${patterns.length} policy patterns and ${tierLists.length} tier lists`);
  for (const p of patterns) assert.equal(p, POLICY_PATTERN);
  for (const t of tierLists) assert.deepEqual(t, [...TIERS]);
});
