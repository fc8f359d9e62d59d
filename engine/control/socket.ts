import { VolumeError } from '../volumes/volumes.js';
import { currentTrace, newTraceId, withTrace } from '../observability/trace.js';
import net from 'node:net';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { POOL_SOCKET } from '../pool/layout.js';
import { readLockOwner } from '../pool/lock.js';
import { FsError, UsageError } from '../util/errors.js';
import type { OperationProgress } from '../pool/pool.js';
import { poolCommand, type CommandArgs, type CommandContext } from './commands.js';
import { PRIVATE_DIR, tighten } from '../util/private-files.js';

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

/** Commands only a daemon serves (shutdown, http, events), beside the pool commands. */
export type ExtraCommands = Record<string, (args: CommandArgs) => Promise<unknown>>;

/**
 * Longest request line the daemon reads. A request is a command name and a few arguments (a
 * configuration document at most); a longer line is refused and the connection closed, so a
 * runaway or hostile client cannot make the daemon buffer and rescan megabytes on its event loop.
 */
export const MAX_REQUEST_BYTES = 1024 * 1024;
const MAX_COMMAND_NAME = 64;
/** Connections served at once: with the line limit, what callers can make the daemon hold is bounded. */
export const MAX_CONNECTIONS = 64;
/** A connection with no command running and nothing sent for this long is closed. */
const IDLE_MS = 60_000;

/** Splits a byte stream into lines without rescanning what was already searched; refuses lines over `max`. */
export class LineReader {
  private chunks: Buffer[] = [];
  private held = 0;

  constructor(private readonly max: number) {}

  /** The complete lines in `chunk` (with what came before); throws when a line passes the limit. */
  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let from = 0;
    for (let nl = chunk.indexOf(10); nl >= 0; nl = chunk.indexOf(10, from)) {
      if (this.held + nl - from > this.max) throw new Error(`a line is longer than ${this.max} bytes`);
      this.chunks.push(chunk.subarray(from, nl));
      lines.push(Buffer.concat(this.chunks).toString('utf8'));
      this.chunks = [];
      this.held = 0;
      from = nl + 1;
    }
    if (from < chunk.length) {
      this.held += chunk.length - from;
      if (this.held > this.max) throw new Error(`a line is longer than ${this.max} bytes`);
      this.chunks.push(chunk.subarray(from));
    }
    return lines;
  }
}

/** A request as sent: checked field by field before anything runs. */
export function parseRequest(line: string): Request {
  let v: unknown;
  try {
    v = JSON.parse(line);
  } catch {
    throw new UsageError('the request is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new UsageError('the request is not a JSON object');
  const r = v as Record<string, unknown>;
  if (typeof r.command !== 'string' || r.command.length === 0 || r.command.length > MAX_COMMAND_NAME) throw new UsageError(`the request's command must be a name of at most ${MAX_COMMAND_NAME} characters`);
  const args = r.args ?? {};
  if (typeof args !== 'object' || args === null || Array.isArray(args)) throw new UsageError("the request's args must be an object");
  for (const [k, a] of Object.entries(args)) {
    if (a !== null && a !== undefined && !['string', 'number', 'boolean'].includes(typeof a)) throw new UsageError(`argument ${k.slice(0, 64)} must be a string, number or boolean`);
  }
  if (r.traceId !== undefined && (typeof r.traceId !== 'string' || r.traceId.length > 64)) throw new UsageError('the request\'s traceId must be a short string');
  return { command: r.command, args: args as CommandArgs, traceId: r.traceId as string | undefined };
}

/**
 * The daemon's local control socket: one JSON request per line, one JSON reply per line. It lives in
 * the pool directory, which only the pool's owner may enter (0700), and is itself 0600.
 * `afterCommand` runs when a pool command finishes (the daemon drops cached status then).
 */
export async function serveControl(ctx: CommandContext, extra: ExtraCommands = {}, afterCommand: (command: string) => void = () => undefined): Promise<net.Server> {
  const file = socketPath(ctx.pool.dir);
  await tighten(await fsp.realpath(ctx.pool.dir).catch(() => ctx.pool.dir), PRIVATE_DIR);
  await fsp.rm(file, { force: true });
  const extras = new Map(Object.entries(extra));
  const server = net.createServer((sock) => {
    const reader = new LineReader(MAX_REQUEST_BYTES);
    // Idle and holding a descriptor: closed, unless a command of it is still running (a long scrub).
    let running = 0;
    sock.setTimeout(IDLE_MS, () => {
      if (running === 0) sock.destroy();
    });
    sock.on('data', (chunk: Buffer) => {
      let lines: string[];
      try {
        lines = reader.push(chunk);
      } catch (err) {
        const reply: Reply = { ok: false, error: `request refused: ${(err as Error).message}`, usage: true };
        sock.end(JSON.stringify(reply) + '\n');
        sock.destroySoon();
        return;
      }
      for (const line of lines) {
        const progress = (p: OperationProgress) => {
          if (!sock.destroyed) sock.write(JSON.stringify({ progress: p } satisfies ProgressLine) + '\n');
        };
        running++;
        void handle(line, progress).then((reply) => {
          running--;
          if (!sock.destroyed) sock.write(JSON.stringify(reply) + '\n');
        });
      }
    });
    sock.on('error', () => undefined);
  });
  async function handle(line: string, progress: (p: OperationProgress) => void): Promise<Reply> {
    try {
      const req = parseRequest(line);
      // The caller's trace id (a CLI command) carries on into the daemon's log lines.
      return await withTrace(`control ${req.command}`, async (): Promise<Reply> => {
        const special = extras.get(req.command);
        if (special) return { ok: true, result: await special(req.args) };
        const fn = poolCommand(req.command);
        if (!fn) return { ok: false, error: `unknown command '${req.command}'`, usage: true };
        try {
          return { ok: true, result: await fn({ ...ctx, progress }, req.args) };
        } finally {
          afterCommand(req.command);
        }
      }, req.traceId ?? newTraceId());
    } catch (err) {
      const code = err instanceof VolumeError ? err.code : err instanceof FsError ? err.code : undefined;
      return { ok: false, error: err instanceof Error ? err.message : String(err), usage: err instanceof UsageError, code };
    }
  }
  // Beyond it a new connection is closed at once (its caller retries or reports it), so a flood of
  // them cannot take the descriptors the fragment I/O needs.
  server.maxConnections = MAX_CONNECTIONS;
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
    let timer: NodeJS.Timeout;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        sock.destroy();
        reject(new Error(`the daemon of ${poolDir} did not answer '${command}' within ${timeoutMs / 1000}s`));
      }, timeoutMs);
    };
    arm();
    // Replies can be large (a long event log), but not without end.
    const reader = new LineReader(256 * 1024 * 1024);
    sock.on('connect', () => {
      connected = true;
      sock.write(JSON.stringify({ command, args, traceId: currentTrace()?.traceId } satisfies Request) + '\n');
    });
    sock.on('data', (chunk: Buffer) => {
      let lines: string[];
      try {
        lines = reader.push(chunk);
      } catch (err) {
        clearTimeout(timer);
        sock.destroy();
        reject(new Error(`the daemon of ${poolDir} sent a reply that is too long: ${(err as Error).message}`));
        return;
      }
      for (const line of lines) {
        const msg = JSON.parse(line) as Reply | ProgressLine;
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
