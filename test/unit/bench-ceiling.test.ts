import assert from 'node:assert/strict';
import { test } from 'node:test';
import { nullOperations } from '../../bench/null-ops.js';
import type { FileSystem } from '../../engine/fs/filesystem.js';
import { fuseOperations } from '../../engine/fuse/operations.js';

test("the bench's do-nothing ceiling answers exactly the operations DynamicFS implements", () => {
  // Handlers are only built here, never called, so no filesystem is needed behind them.
  const ours = Object.keys(fuseOperations({} as FileSystem)).sort();
  assert.deepEqual(Object.keys(nullOperations(true)).sort(), ours);
  const minimal = Object.keys(nullOperations(false));
  assert.ok(!minimal.includes('getxattr') && minimal.every((op) => ours.includes(op)));
});
