import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { crdFiles } from './api/crds.js';
import { crdReference } from './api/crd-reference.js';

// Writes crds/ and the chart's copy from the schemas (npm run gen:crds).
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
for (const [name, text] of Object.entries(crdFiles())) {
  writeFileSync(path.join(repo, 'crds', name), text);
  writeFileSync(path.join(repo, 'charts/dynamicfs/crds', name), text);
}
writeFileSync(path.join(repo, 'docs/CRDS.md'), crdReference());
