import { promises as fsp } from 'node:fs';
import net from 'node:net';
import { newTraceId, withTrace } from '../observability/trace.js';
import { FsError, UsageError } from '../util/errors.js';
import { PoolError } from '../pool/pool.js';
import { VolumeError } from '../volumes/volumes.js';
import { isPoolCommand, poolCommands, type CommandArgs, type CommandContext } from './commands.js';
import { LineReader, socketPath } from './client.js';
import {
  controlCode,
  ERRNO_CODES,
  type ControlCode,
  type DaemonCommandName,
  type OperationProgress,
  type ProgressLine,
  type Reply,
  type Request,
  type ResultOf,
} from './protocol.js';
import { PRIVATE_DIR, tighten } from '../util/private-files.js';

// The daemon's side of the control socket; callers use client.ts.

/** Commands only a daemon serves (shutdown, http, events), beside the pool commands. */
export type ExtraCommands = { [C in DaemonCommandName]?: (args: CommandArgs) => Promise<ResultOf<C>> };

/** What daemons before the control codes sent as `code`: a volume error's code or an errno name. */
export function legacyCode(err: unknown): string | undefined {
  return err instanceof VolumeError || err instanceof FsError ? err.code : undefined;
}

/** The code a failure is reported with, from the class of what was thrown (and its own code, when it has one). */
export function errorCode(err: unknown): ControlCode {
  if (err instanceof UsageError) return 'INVALID_ARGUMENT';
  if (err instanceof VolumeError) return controlCode(err.code);
  if (err instanceof FsError) return Object.hasOwn(ERRNO_CODES, err.code) ? ERRNO_CODES[err.code] : 'INTERNAL';
  // The pool refuses what its state does not allow (a disk in use, a scrub already running, too few disks).
  if (err instanceof PoolError) return 'FAILED_PRECONDITION';
  return 'INTERNAL';
}

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
  if (typeof r.command !== 'string' || r.command.length === 0 || r.command.length > MAX_COMMAND_NAME)
    throw new UsageError(`the request's command must be a name of at most ${MAX_COMMAND_NAME} characters`);
  const args = r.args ?? {};
  if (typeof args !== 'object' || args === null || Array.isArray(args)) throw new UsageError("the request's args must be an object");
  for (const [k, a] of Object.entries(args)) {
    if (a !== null && a !== undefined && !['string', 'number', 'boolean'].includes(typeof a))
      throw new UsageError(`argument ${k.slice(0, 64)} must be a string, number or boolean`);
  }
  if (r.traceId !== undefined && (typeof r.traceId !== 'string' || r.traceId.length > 64))
    throw new UsageError("the request's traceId must be a short string");
  return { command: r.command, args: args as CommandArgs, traceId: r.traceId as string | undefined };
}

/**
 * The daemon's local control socket: one JSON request per line, one JSON reply per line. It lives in
 * the pool directory, which only the pool's owner may enter (0700), and is itself 0600.
 * `afterCommand` runs when a pool command finishes (the daemon drops cached status then).
 */
export async function serveControl(
  ctx: CommandContext,
  extra: ExtraCommands = {},
  afterCommand: (command: string) => void = () => undefined,
): Promise<net.Server> {
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
        const reply: Reply = { ok: false, error: `request refused: ${(err as Error).message}`, usage: true, status: 'INVALID_ARGUMENT' };
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
      return await withTrace(
        `control ${req.command}`,
        async (): Promise<Reply> => {
          const special = extras.get(req.command);
          if (special) return { ok: true, result: await special(req.args) };
          if (!isPoolCommand(req.command)) {
            return { ok: false, error: `unknown command '${req.command}'`, usage: true, status: 'UNIMPLEMENTED' };
          }
          const fn = poolCommands[req.command];
          try {
            return { ok: true, result: await fn({ ...ctx, progress }, req.args) };
          } finally {
            afterCommand(req.command);
          }
        },
        req.traceId ?? newTraceId(),
      );
    } catch (err) {
      return {
        ok: false,
        error: err instanceof Error ? err.message : String(err),
        usage: err instanceof UsageError,
        code: legacyCode(err),
        status: errorCode(err),
      };
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
