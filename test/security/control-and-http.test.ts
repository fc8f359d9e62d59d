import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import { isMounted } from '../../engine/fuse/mount.js';
import { cleanup, cli, cliJson, eventually, freePort, httpGet, makePool, MountedPool } from '../helpers/env.js';
import { asNobody, modeOf, openPathTo } from '../helpers/users.js';

/** Sends raw bytes to a control socket; resolves with everything it answered once it closes or goes quiet. */
function rawExchange(socket: string, payload: Buffer | string, quietMs = 1500): Promise<{ text: string; closed: boolean; ms: number }> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const sock = net.connect(socket);
    let text = '';
    let timer: NodeJS.Timeout;
    const done = (closed: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve({ text, closed, ms: performance.now() - start });
    };
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => done(false), quietMs);
    };
    sock.on('connect', () => {
      arm();
      sock.write(payload);
    });
    sock.on('data', (d: Buffer) => {
      text += d.toString();
      arm();
    });
    sock.on('close', () => done(true));
    sock.on('error', (err: NodeJS.ErrnoException) => (err.code === 'EPIPE' || err.code === 'ECONNRESET' ? done(true) : reject(err)));
  });
}

/** Milliseconds a `stat` of the mount takes from another process. */
function statMs(p: string): Promise<number> {
  return new Promise((resolve) => {
    const start = performance.now();
    spawn('stat', [p], { stdio: 'ignore' }).on('exit', () => resolve(performance.now() - start));
  });
}

test('control socket: private, bounded lines, a closed command table, malformed requests refused', async () => {
  const p = await makePool({ disks: 2 });
  openPathTo(p.root);
  const m = await MountedPool.start(p.pool, p.mnt);
  const socket = path.join(p.pool, 'control.sock');
  try {
    await eventually('the control socket', () => (fs.existsSync(socket) ? true : undefined));
    assert.equal(modeOf(p.pool), 0o700);
    assert.equal(modeOf(socket), 0o600);
    const other = asNobody([
      '/usr/bin/python3',
      '-c',
      'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])',
      socket,
    ]);
    assert.match(other.out, /Permission denied/, 'another user reached the control socket');

    // A 32 MiB line: refused after the first MiB, the connection closed; the mount answers meanwhile.
    const stats: Promise<number>[] = [];
    const poll = setInterval(() => stats.push(statMs(p.mnt)), 50);
    const big = await rawExchange(
      socket,
      Buffer.concat([Buffer.from('{"command":"status","args":{"x":"'), Buffer.alloc(32 * 1024 * 1024, 'a'), Buffer.from('"}}\n')]),
    );
    clearInterval(poll);
    assert.ok(big.closed, 'the daemon kept reading an endless line');
    assert.match(big.text, /longer than 1048576 bytes/);
    const slowest = Math.max(...(await Promise.all(stats)));
    assert.ok(slowest < 1000, `a stat of the mount took ${slowest.toFixed(0)} ms while the line arrived`);

    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', 'isPrototypeOf']) {
      const r = await rawExchange(socket, JSON.stringify({ command: name, args: {} }) + '\n', 500);
      assert.match(r.text, /"ok":false.*unknown command/, `command '${name}' answered ${r.text.slice(0, 200)}`);
    }
    const malformed: [string, RegExp][] = [
      ['not json', /not JSON/],
      ['[1,2]', /not a JSON object/],
      ['{"command": 5}', /command must be a name/],
      ['{"command": "status", "args": [1]}', /args must be an object/],
      ['{"command": "status", "args": {"x": {"y": 1}}}', /argument x must be a string, number or boolean/],
    ];
    for (const [line, want] of malformed) {
      const r = await rawExchange(socket, line + '\n', 500);
      assert.match(r.text, want, `${line}: ${r.text}`);
    }
    // Connections are capped: 100 held open, at most 64 are kept; the daemon's descriptors stay its own.
    const held = await Promise.all(
      Array.from(
        { length: 100 },
        () =>
          new Promise<net.Socket>((resolve) => {
            const c = net.connect(socket);
            c.on('connect', () => resolve(c));
            c.on('error', () => resolve(c));
          }),
      ),
    );
    await new Promise((r) => setTimeout(r, 500));
    const open = held.filter((c) => !c.destroyed && c.readyState === 'open').length;
    assert.ok(open <= 64, `${open} connections held open`);
    const daemonFds = fs.readdirSync(`/proc/${m.child.pid}/fd`).length;
    for (const c of held) c.destroy();
    assert.ok(daemonFds < 200, `the daemon holds ${daemonFds} descriptors`);
    await eventually('the daemon to close the held connections', () =>
      fs.readdirSync(`/proc/${m.child.pid}/fd`).length < daemonFds - 32 ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 300));
    // Out of descriptors (a flood, a low limit): writes fail, but no disk is blamed for it.
    const pid = m.child.pid as number;
    const limit = fs.readdirSync(`/proc/${pid}/fd`).length;
    const [, soft] = /Max open files\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/limits`, 'utf8')) ?? [];
    execFileSync('prlimit', ['--pid', String(pid), `--nofile=${limit}:`]);
    const starved = spawnSync('sh', ['-c', `head -c 600000 /dev/urandom > ${p.mnt}/starved && sync ${p.mnt}/starved`]);
    execFileSync('prlimit', ['--pid', String(pid), `--nofile=${soft}:`]);
    assert.notEqual(starved.status, 0, 'a write succeeded without descriptors for its fragments');
    const errors = cliJson<{ disks: { errors: { read: number; write: number; checksum: number }; health: string }[] }>(
      'list-disks',
      p.pool,
    ).disks;
    assert.deepEqual(
      errors.map((d) => [d.health, d.errors.write]),
      errors.map(() => ['healthy', 0]),
      'EMFILE was counted against a disk',
    );
    // And once descriptors are back, the daemon writes again (its I/O threads restart after a pause).
    await eventually(
      'writes to work again',
      () =>
        spawnSync('sh', ['-c', `head -c 600000 /dev/urandom > ${p.mnt}/again && sync ${p.mnt}/again`]).status === 0 ? true : undefined,
      15_000,
    );
    // Still serving: the CLI goes through the same socket.
    assert.equal(cliJson<{ pool: { name: string } }>('status', p.pool).pool.name, 'pool');
  } finally {
    await m.stop();
    cleanup(p.root);
  }
});

test('HTTP: a network address serves /metrics and /health only; loopback serves everything; listen addresses are checked before mounting', async () => {
  const p = await makePool({ disks: 2 });
  try {
    const port = await freePort();
    const m = await MountedPool.start(p.pool, p.mnt, ['--metrics-listen', `0.0.0.0:${port}`]);
    try {
      const base = `http://127.0.0.1:${port}`;
      // The address is taken before the mount; ready once the daemon serves.
      await eventually('the daemon ready', async () => ((await httpGet(`${base}/readyz`)).status === 200 ? true : undefined));
      assert.equal((await httpGet(`${base}/metrics`)).status, 200);
      assert.ok([200, 202].includes((await httpGet(`${base}/health`)).status));
      for (const route of ['/events', '/diagnostics']) {
        const r = await httpGet(`${base}${route}`);
        assert.equal(r.status, 404, `${route} on a network address`);
        assert.match(r.body, /not served on a network address/);
      }
      // The administrator may open them up, live.
      const cfg = path.join(p.root, 'all.yaml');
      fs.writeFileSync(cfg, 'monitoring:\n  network_endpoints: all\n');
      cliJson('config', 'apply', p.pool, cfg);
      assert.equal((await httpGet(`${base}/events`)).status, 200);
    } finally {
      await m.stop();
    }
    const loopPort = await freePort();
    const loop = await MountedPool.start(p.pool, p.mnt, ['--metrics-listen', `127.0.0.1:${loopPort}`]);
    try {
      const cfg = path.join(p.root, 'narrow.yaml');
      fs.writeFileSync(cfg, 'monitoring:\n  network_endpoints: metrics-and-health\n');
      cliJson('config', 'apply', p.pool, cfg);
      assert.equal((await httpGet(`http://127.0.0.1:${loopPort}/events`)).status, 200, 'loopback serves everything');
      assert.equal((await httpGet(`http://127.0.0.1:${loopPort}/diagnostics`)).status, 200);
    } finally {
      await loop.stop();
    }

    // Bad addresses: refused by the schema and the CLI, before anything is mounted.
    for (const bad of ['127.0.0.1:99999', ':0', '1.2.3.999:80', 'two words:80', '[::1:80', '127.0.0.1']) {
      const file = path.join(p.root, 'bad.yaml');
      fs.writeFileSync(file, `monitoring:\n  metrics_listen: "${bad}"\n`);
      const v = cli('config', 'validate', file);
      assert.notEqual(v.code, 0, `config validate accepted ${bad}`);
      assert.match(v.stderr + v.stdout, /monitoring\.metrics_listen/);
      const r = cli('mount', p.pool, p.mnt, '--metrics-listen', bad);
      assert.notEqual(r.code, 0, `mount accepted --metrics-listen ${bad}`);
      assert.equal(await isMounted(p.mnt), false, `a mount was left after --metrics-listen ${bad}`);
    }
    // An address in use: the daemon fails before it mounts, and says why.
    const busy = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => busy.once('listening', r));
    const r = cli('mount', p.pool, p.mnt, '--metrics-listen', `127.0.0.1:${(busy.address() as net.AddressInfo).port}`);
    busy.close();
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /cannot listen/);
    assert.equal(await isMounted(p.mnt), false);
  } finally {
    cleanup(p.root);
  }
});
