import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { callControl, socketPath } from '../../engine/control/client.js';
import { CONTROL_CODES, ControlError, controlCode, type ControlCode } from '../../engine/control/protocol.js';
import { errorCode, legacyCode } from '../../engine/control/socket.js';
import { ConfigError } from '../../engine/config/load.js';
import { PoolError } from '../../engine/pool/pool.js';
import { FsError, UsageError } from '../../engine/util/errors.js';
import { VolumeError } from '../../engine/volumes/volumes.js';
import { CsiError, GRPC_STATUS, toServiceError } from '../../csi-driver/src/errors.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'dfs-control-errors-'));
after(() => rmSync(root, { recursive: true, force: true }));

/** The gRPC status a CSI handler answers with when it throws `err`. */
const grpc = (err: unknown) => toServiceError(err).code;

const EXPECTED: Record<ControlCode, status> = {
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  NOT_FOUND: status.NOT_FOUND,
  ALREADY_EXISTS: status.ALREADY_EXISTS,
  RESOURCE_EXHAUSTED: status.RESOURCE_EXHAUSTED,
  FAILED_PRECONDITION: status.FAILED_PRECONDITION,
  PERMISSION_DENIED: status.PERMISSION_DENIED,
  UNIMPLEMENTED: status.UNIMPLEMENTED,
  UNAVAILABLE: status.UNAVAILABLE,
  INTERNAL: status.INTERNAL,
};

test('every control code maps to its gRPC status, whatever the message says', () => {
  assert.deepEqual(Object.keys(GRPC_STATUS).sort(), [...CONTROL_CODES].sort());
  for (const code of CONTROL_CODES) {
    assert.equal(grpc(new ControlError('something failed', code)), EXPECTED[code], code);
    // Words that used to be matched change nothing: only the code counts.
    const misleading = new ControlError('cannot reach the daemon of /p: did not answer', code);
    assert.equal(grpc(misleading), EXPECTED[code], `${code} with a misleading message`);
  }
  assert.equal(
    grpc(new Error('cannot reach the daemon of /p: connect ENOENT')),
    status.INTERNAL,
    'a plain error is not read by its message',
  );
  assert.equal(grpc(new Error('the daemon of /p did not answer')), status.INTERNAL);
  assert.equal(grpc('a string'), status.INTERNAL);
  assert.equal(grpc(new CsiError(status.ABORTED, 'busy')), status.ABORTED);
  const e = toServiceError(new ControlError('volume v exists', 'ALREADY_EXISTS'));
  assert.equal(e.details, 'volume v exists');
});

test('codes of older daemons are understood: their volume codes, errno names, usage errors without a code', () => {
  const legacy: [unknown, boolean, ControlCode][] = [
    ['INVALID', false, 'INVALID_ARGUMENT'],
    ['NOT_FOUND', false, 'NOT_FOUND'],
    ['EXISTS', false, 'ALREADY_EXISTS'],
    ['EXHAUSTED', false, 'RESOURCE_EXHAUSTED'],
    ['BUSY', false, 'FAILED_PRECONDITION'],
    ['ENOSPC', false, 'RESOURCE_EXHAUSTED'],
    ['EDQUOT', false, 'RESOURCE_EXHAUSTED'],
    ['ENOENT', false, 'NOT_FOUND'],
    ['EIO', false, 'INTERNAL'],
    [undefined, true, 'INVALID_ARGUMENT'],
    [undefined, false, 'INTERNAL'],
    ['SOMETHING_NEW', false, 'INTERNAL'],
    [42, false, 'INTERNAL'],
    ['constructor', false, 'INTERNAL'],
    ['__proto__', false, 'INTERNAL'],
  ];
  for (const [wire, usage, want] of legacy) assert.equal(controlCode(wire, usage), want, `${String(wire)} usage=${usage}`);
  for (const code of CONTROL_CODES) assert.equal(controlCode(code), code);
  assert.equal(grpc(new ControlError('x', controlCode('EXISTS'))), status.ALREADY_EXISTS);
  assert.equal(grpc(new ControlError('x', controlCode('BUSY'))), status.FAILED_PRECONDITION);
});

test('the daemon codes a failure from the class of what was thrown', () => {
  const cases: [unknown, ControlCode][] = [
    [new UsageError('missing argument: name'), 'INVALID_ARGUMENT'],
    [new ConfigError('dynamicfs.yaml', [{ field: 'storage.redundancy', value: 'raid5', expected: 'a policy' }]), 'INVALID_ARGUMENT'],
    [new VolumeError('INVALID', 'x'), 'INVALID_ARGUMENT'],
    [new VolumeError('NOT_FOUND', 'x'), 'NOT_FOUND'],
    [new VolumeError('EXISTS', 'x'), 'ALREADY_EXISTS'],
    [new VolumeError('EXHAUSTED', 'x'), 'RESOURCE_EXHAUSTED'],
    [new VolumeError('BUSY', 'x'), 'FAILED_PRECONDITION'],
    [new FsError('ENOSPC', 'x'), 'RESOURCE_EXHAUSTED'],
    [new FsError('EDQUOT', 'x'), 'RESOURCE_EXHAUSTED'],
    [new FsError('ENOENT', 'x'), 'NOT_FOUND'],
    [new FsError('EEXIST', 'x'), 'ALREADY_EXISTS'],
    [new FsError('EACCES', 'x'), 'PERMISSION_DENIED'],
    [new FsError('EIO', 'x'), 'INTERNAL'],
    [new PoolError('a scrub is already running on this pool'), 'FAILED_PRECONDITION'],
    [new Error('no disk found'), 'INTERNAL'],
    [Object.assign(new Error('raw system error'), { code: 'ENOENT' }), 'INTERNAL'],
    ['thrown string', 'INTERNAL'],
  ];
  for (const [err, want] of cases) assert.equal(errorCode(err), want, String(err));
});

test('a daemon keeps sending the codes older CSI plugins read, beside the new status', () => {
  // What a CSI plugin before the control codes mapped (csi-driver/src/errors.ts of that version).
  const OLDER_PLUGIN: Record<string, status> = {
    INVALID: status.INVALID_ARGUMENT,
    NOT_FOUND: status.NOT_FOUND,
    EXISTS: status.ALREADY_EXISTS,
    EXHAUSTED: status.RESOURCE_EXHAUSTED,
    BUSY: status.FAILED_PRECONDITION,
    ENOSPC: status.RESOURCE_EXHAUSTED,
  };
  const cases: [unknown, status][] = [
    [new VolumeError('INVALID', 'x'), status.INVALID_ARGUMENT],
    [new VolumeError('NOT_FOUND', 'x'), status.NOT_FOUND],
    [new VolumeError('EXISTS', 'x'), status.ALREADY_EXISTS],
    [new VolumeError('EXHAUSTED', 'x'), status.RESOURCE_EXHAUSTED],
    [new VolumeError('BUSY', 'x'), status.FAILED_PRECONDITION],
    [new FsError('ENOSPC', 'x'), status.RESOURCE_EXHAUSTED],
  ];
  for (const [err, want] of cases) {
    const code = legacyCode(err);
    assert.equal(code === undefined ? undefined : OLDER_PLUGIN[code], want, String(err));
  }
  assert.equal(legacyCode(new UsageError('x')), undefined);
});

/** A stand-in daemon on `dir`'s control socket: answers each request line with `answer(request)`. */
async function fakeDaemon(dir: string, answer: (req: { command: string }, sock: net.Socket) => void): Promise<net.Server> {
  const server = net.createServer((sock) => {
    let buf = '';
    sock.on('data', (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf('\n');
      if (nl >= 0) answer(JSON.parse(buf.slice(0, nl)) as { command: string }, sock);
    });
    sock.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(socketPath(dir), resolve));
  return server;
}

const rejection = async (p: Promise<unknown>): Promise<ControlError> => {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof ControlError, `expected a ControlError, got ${String(err)}`);
    return err;
  }
  assert.fail('the call succeeded');
};

test('no daemon at all: callControl fails with UNAVAILABLE (unreachable), and the CSI plugin answers UNAVAILABLE', async () => {
  const dir = mkdtempSync(path.join(root, 'none-'));
  const err = await rejection(callControl(dir, 'volume-list', {}));
  assert.equal(err.code, 'UNAVAILABLE');
  assert.equal(err.unreachable, true);
  assert.equal(err.usage, false);
  assert.equal(grpc(err), status.UNAVAILABLE);
});

test('replies of a daemon: codes old and new, usage, results typed by the command table', async () => {
  const dir = mkdtempSync(path.join(root, 'fake-'));
  const replies: Record<string, object> = {
    'volume-create': { ok: false, error: 'volume v exists with capacity 5', usage: false, code: 'EXISTS' },
    'volume-expand': { ok: false, error: 'pool p cannot grow v', usage: false, code: 'RESOURCE_EXHAUSTED' },
    'volume-delete': { ok: false, error: 'missing argument: name', usage: true },
    'volume-get': { ok: false, error: 'no volume v', usage: false, code: 'NOT_FOUND' },
    // A daemon of this version: the new status wins over the legacy code.
    'volume-stats': { ok: false, error: 'volume v is busy', usage: false, code: 'ENOSPC', status: 'FAILED_PRECONDITION' },
    'volume-capacity': { ok: true, result: { available: 12345 } },
  };
  const server = await fakeDaemon(dir, (req, sock) => {
    if (req.command === 'volume-capacity') sock.write(JSON.stringify({ progress: { extentsDone: 0, extentsTotal: 1 } }) + '\n');
    sock.write(JSON.stringify(replies[req.command]) + '\n');
  });
  try {
    const created = await rejection(callControl(dir, 'volume-create', { name: 'v', capacity: 5 }));
    assert.deepEqual([created.code, grpc(created)], ['ALREADY_EXISTS', status.ALREADY_EXISTS]);
    assert.equal(created.message, 'volume v exists with capacity 5');
    assert.equal(created.unreachable, false);
    const expanded = await rejection(callControl(dir, 'volume-expand', { name: 'v', capacity: 10 }));
    assert.equal(grpc(expanded), status.RESOURCE_EXHAUSTED);
    const usage = await rejection(callControl(dir, 'volume-delete', { name: '' }));
    assert.deepEqual([usage.code, usage.usage, grpc(usage)], ['INVALID_ARGUMENT', true, status.INVALID_ARGUMENT]);
    assert.equal(grpc(await rejection(callControl(dir, 'volume-get', { name: 'v' }))), status.NOT_FOUND);
    const busy = await rejection(callControl(dir, 'volume-stats', { name: 'v' }));
    assert.deepEqual([busy.code, grpc(busy)], ['FAILED_PRECONDITION', status.FAILED_PRECONDITION]);
    const progress: number[] = [];
    const r = await callControl(dir, 'volume-capacity', {}, (p) => progress.push(p.extentsTotal));
    // Typed by the table: `available` is a number without a cast.
    const available: number = r.available;
    assert.equal(available, 12345);
    assert.deepEqual(progress, [1]);
  } finally {
    server.close();
  }
});

test('a daemon that closes without answering, or does not answer in time: UNAVAILABLE, not unreachable', async () => {
  const closing = mkdtempSync(path.join(root, 'closing-'));
  const s1 = await fakeDaemon(closing, (_req, sock) => sock.end());
  const silent = mkdtempSync(path.join(root, 'silent-'));
  const s2 = await fakeDaemon(silent, () => undefined);
  try {
    const closed = await rejection(callControl(closing, 'ping', {}, undefined, 5000));
    assert.deepEqual([closed.code, closed.unreachable, grpc(closed)], ['UNAVAILABLE', false, status.UNAVAILABLE]);
    const started = Date.now();
    const late = await rejection(callControl(silent, 'ping', {}, undefined, 300));
    assert.deepEqual([late.code, late.unreachable, grpc(late)], ['UNAVAILABLE', false, status.UNAVAILABLE]);
    assert.ok(Date.now() - started < 3000);
  } finally {
    s1.close();
    s2.close();
  }
});

/** Relative modules a compiled module loads, transitively (static imports and re-exports). */
function loadedModules(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/^(?:import|export)\b[^;]*?\bfrom\s+'(\.[^']+)'|^import\s+'(\.[^']+)'/gm)) {
    loadedModules(path.resolve(path.dirname(file), m[1] ?? m[2]), seen);
  }
  return seen;
}

test('the protocol and the client load nothing of the engine: the CSI plugin and the node agent can use them', () => {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const control = path.resolve(here, '../../engine/control');
  const protocol = loadedModules(path.join(control, 'protocol.js'));
  assert.deepEqual(
    [...protocol].map((f) => path.basename(f)),
    ['protocol.js'],
    'protocol.js imports at run time',
  );
  const client = [...loadedModules(path.join(control, 'client.js'))].map((f) => path.relative(path.resolve(here, '../..'), f)).sort();
  for (const heavy of ['engine/pool/pool.js', 'engine/fs/filesystem.js', 'engine/control/commands.js', 'engine/volumes/volumes.js']) {
    assert.ok(!client.includes(heavy), `client.js loads ${heavy} (${client.join(', ')})`);
  }
});
