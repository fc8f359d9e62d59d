import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CSI_LOADER_OPTIONS } from '../../csi-driver/src/proto.js';
import { skipBecause } from '../helpers/skip.js';

const GENERATOR = 'scripts/gen-csi-types.mjs';

/** The repository: above the compiled tests, or where the run started (the LTS run copies dist/ elsewhere). */
function repository(): string | undefined {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const has = (d: string) => existsSync(path.join(d, GENERATOR)) && existsSync(path.join(d, 'csi-driver/proto/csi.proto'));
  return [path.resolve(here, '../../..'), process.cwd()].find(has);
}

/** Every file under `dir`, by its path relative to it. */
function tree(dir: string, rel = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const p = path.join(rel, e.name);
    if (e.isDirectory()) for (const [k, v] of tree(dir, p)) out.set(k, v);
    else out.set(p, readFileSync(path.join(dir, p), 'utf8'));
  }
  return out;
}

interface Generator {
  generate(outDir: string): string;
  DEFAULT_OUT: string;
  LOADER_OPTIONS: Record<string, unknown>;
}

test('the generated CSI types are what csi.proto gives now (run npm run gen:csi when this fails)', async (t) => {
  const root = repository();
  if (!root) return skipBecause(t, `${GENERATOR} and csi-driver/proto are not beside the compiled tests nor in the working directory`);
  const gen = (await import(pathToFileURL(path.join(root, GENERATOR)).href)) as Generator;
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'dfs-csi-gen-'));
  try {
    const fresh = tree(gen.generate(tmp));
    const committed = tree(path.join(root, gen.DEFAULT_OUT));
    assert.ok(fresh.size > 50, `only ${fresh.size} files generated`);
    const missing = [...fresh.keys()].filter((f) => !committed.has(f));
    const extra = [...committed.keys()].filter((f) => !fresh.has(f));
    const differ = [...fresh.keys()].filter((f) => committed.has(f) && committed.get(f) !== fresh.get(f));
    const stale = `${gen.DEFAULT_OUT} is out of date with csi.proto: run npm run gen:csi`;
    assert.deepEqual({ missing, extra, differ }, { missing: [], extra: [], differ: [] }, stale);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('the CSI plugin loads csi.proto with the options its generated types were made for', async (t) => {
  const root = repository();
  if (!root) return skipBecause(t, `${GENERATOR} is not beside the compiled tests nor in the working directory`);
  const gen = (await import(pathToFileURL(path.join(root, GENERATOR)).href)) as Generator;
  // longs and enums are constructors for the loader (Number, String) and their names for the generator.
  const loaded = Object.fromEntries(Object.entries(CSI_LOADER_OPTIONS).map(([k, v]) => [k, typeof v === 'function' ? v.name : v]));
  assert.deepEqual(loaded, gen.LOADER_OPTIONS);
});
