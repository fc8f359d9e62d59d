import { VolumeError } from '../volumes/volumes.js';
import { currentTrace, newTraceId, withTrace } from '../observability/trace.js';
import net from 'node:net';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { POOL_SOCKET } from '../pool/layout.js';
import { readLockOwner } from '../pool/lock.js';
import { FsError, UsageError } from '../util/errors.js';
import type { OperationProgress } from '../pool/pool.js';
import { poolCommands, type CommandArgs, type CommandContext } from './commands.js';

interface Request { command: string; args: CommandArgs; traceId?: string }
type Reply = { ok: true; result: unknown } | { ok: false; error: string; usage: boolean; code?: string };

/** A failure reported by the daemon, with the engine's error code when it has one (volume errors). */
export class ControlError extends Error {
  constructor(message: string, readonly code: string | undefined) {
    super(message);
    this.name = 'ControlError';
  }
}
/** Sent before the reply while a long operation runs. */
interface ProgressLine { progress: OperationProgress }

export function socketPath(poolDir: string): string {
  return path.join(poolDir, POOL_SOCKET);
}

/** The mount daemon's local control socket: one JSON request per line, one JSON reply per line. */
export type ExtraCommands = Record<string, (args: CommandArgs) => Promise<unknown>>;

/** `afterCommand` runs when a pool command finishes (the daemon drops cached status then). */
export async function serveControl(ctx: CommandContext, extra: ExtraCommands = {}, afterCommand: (command: string) => void = () => undefined): Promise<net.Server> {
  const file = socketPath(ctx.pool.dir);
  await fsp.rm(file, { force: true });
  const server = net.createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const progress = (p: OperationProgress) => {
          if (!sock.destroyed) sock.write(JSON.stringify({ progress: p } satisfies ProgressLine) + '\n');
        };
        void handle(line, progress).then((reply) => {
          if (!sock.destroyed) sock.write(JSON.stringify(reply) + '\n');
        });
      }
    });
    sock.on('error', () => undefined);
  });
  async function handle(line: string, progress: (p: OperationProgress) => void): Promise<Reply> {
    try {
      const req = JSON.parse(line) as Request;
      // The caller's trace id (a CLI command) carries on into the daemon's log lines.
      return await withTrace(`control ${req.command}`, async (): Promise<Reply> => {
        const special = extra[req.command];
        if (special) return { ok: true, result: await special(req.args ?? {}) };
        const fn = poolCommands[req.command];
        if (!fn) return { ok: false, error: `unknown command '${req.command}'`, usage: true };
        try {
          return { ok: true, result: await fn({ ...ctx, progress }, req.args ?? {}) };
        } finally {
          afterCommand(req.command);
        }
      }, req.traceId ?? newTraceId());
    } catch (err) {
      const code = err instanceof VolumeError ? err.code : err instanceof FsError ? err.code : undefined;
      return { ok: false, error: err instanceof Error ? err.message : String(err), usage: err instanceof UsageError, code };
    }
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(file, () => resolve());
  });
  await fsp.chmod(file, 0o600);
  return server;
}

/** How long a caller waits for the socket of a daemon that owns the pool but is still starting. */
const DAEMON_START_MS = 15_000;

/**
 * Sends one command to the daemon that owns the pool; progress lines of long operations go to
 * `onProgress`. The timeout is for the daemon to answer at all, restarted by each progress line.
 * A daemon takes the pool's lock and mounts before its control socket listens, so a missing or
 * refusing socket is retried for a while as long as the lock's owner is alive.
 */
export async function callControl(poolDir: string, command: string, args: CommandArgs, onProgress?: (p: OperationProgress) => void, timeoutMs = 120_000): Promise<unknown> {
  const deadline = Date.now() + DAEMON_START_MS;
  for (;;) {
    try {
      return await callControlOnce(poolDir, command, args, onProgress, timeoutMs);
    } catch (err) {
      const starting = err instanceof NotListening && readLockOwner(poolDir) !== undefined && Date.now() < deadline;
      if (!starting) throw err instanceof NotListening ? new Error(`cannot reach the daemon of ${poolDir}: ${err.message}`) : err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** The socket is missing or refuses connections: nothing was sent, so trying again is safe. */
class NotListening extends Error {}

function callControlOnce(poolDir: string, command: string, args: CommandArgs, onProgress: ((p: OperationProgress) => void) | undefined, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath(poolDir));
    let connected = false;
    let buf = '';
    let timer: NodeJS.Timeout;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`the daemon of ${poolDir} did not answer '${command}' within ${timeoutMs / 1000}s`));
      }, timeoutMs);
    };
    arm();
    sock.setEncoding('utf8');
    sock.on('connect', () => {
      connected = true;
      sock.write(JSON.stringify({ command, args, traceId: currentTrace()?.traceId } satisfies Request) + '\n');
    });
    sock.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(buf.slice(0, nl)) as Reply | ProgressLine;
        buf = buf.slice(nl + 1);
        if ('progress' in msg) {
          arm();
          onProgress?.(msg.progress);
          continue;
        }
        clearTimeout(timer);
        sock.end();
        if (msg.ok) resolve(msg.result);
        else reject(msg.usage ? new UsageError(msg.error) : new ControlError(msg.error, msg.code));
        return;
      }
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (!connected && (err.code === 'ENOENT' || err.code === 'ECONNREFUSED')) reject(new NotListening(err.message));
      else reject(new Error(`cannot reach the daemon of ${poolDir}: ${err.message}`));
    });
  });
}
