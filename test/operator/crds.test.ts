import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { crdFiles } from '../../operator/src/api/crds.js';
import { crdReference } from '../../operator/src/api/crd-reference.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

test('crds/ is what the schemas generate (the config CRD spec is the engine config schema)', () => {
  const files = crdFiles();
  assert.deepEqual(fs.readdirSync(path.join(repo, 'crds')).sort(), Object.keys(files).sort());
  for (const [name, text] of Object.entries(files)) {
    assert.equal(fs.readFileSync(path.join(repo, 'crds', name), 'utf8'), text, `crds/${name} is stale: run npm run gen:crds`);
  }
  const config = parse(files['dynamicfs.io_dynamicfsconfigs.yaml']) as { spec: { versions: { schema: { openAPIV3Schema: { properties: { spec: { properties: Record<string, unknown> } } } } }[] } };
  assert.deepEqual(Object.keys(config.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties), ['preset', 'storage', 'performance', 'reliability', 'monitoring', 'security']);
});

test('docs/CRDS.md is the reference generated from the CRDs', () => {
  assert.equal(fs.readFileSync(path.join(repo, 'docs/CRDS.md'), 'utf8'), crdReference(), 'docs/CRDS.md is stale: run npm run gen:crds');
});
