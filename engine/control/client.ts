import net from 'node:net';
import path from 'node:path';
import { currentTrace } from '../observability/trace.js';
import { POOL_SOCKET } from '../pool/layout.js';
import { readLockOwner } from '../pool/lock.js';
import {
  ControlError,
  controlCode,
  isControlCode,
  type ArgsOf,
  type CommandName,
  type OperationProgress,
  type ProgressLine,
  type Reply,
  type Request,
  type ResultOf,
} from './protocol.js';

// The caller's side of the control socket. Light: it opens no pool (the CSI plugin and the node agent use it).

export function socketPath(poolDir: string): string {
  return path.join(poolDir, POOL_SOCKET);
}

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

/** How long a caller waits for the socket of a daemon that owns the pool but is still starting. */
const DAEMON_START_MS = 15_000;

/** No daemon answers at `poolDir`: its socket is missing or refuses connections, or the connection broke. */
function unreachable(poolDir: string, why: string): ControlError {
  return new ControlError(`cannot reach the daemon of ${poolDir}: ${why}`, 'UNAVAILABLE', { unreachable: true });
}

/**
 * Sends one command to the daemon that owns the pool; progress lines of long operations go to
 * `onProgress`. The timeout is for the daemon to answer at all, restarted by each progress line.
 * A daemon takes the pool's lock and mounts before its control socket listens, so a missing or
 * refusing socket is retried for a while as long as the lock's owner is alive.
 * Fails with a ControlError: the daemon's own code, or UNAVAILABLE when it cannot be reached or does not answer.
 */
export async function callControl<C extends CommandName>(
  poolDir: string,
  command: C,
  args: ArgsOf<C>,
  onProgress?: (p: OperationProgress) => void,
  timeoutMs = 120_000,
): Promise<ResultOf<C>> {
  const deadline = Date.now() + DAEMON_START_MS;
  for (;;) {
    try {
      return await callControlOnce(poolDir, command, args, onProgress, timeoutMs);
    } catch (err) {
      if (!(err instanceof NotListening)) throw err;
      if (readLockOwner(poolDir) === undefined || Date.now() >= deadline) throw unreachable(poolDir, err.message);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** The socket is missing or refuses connections: nothing was sent, so trying again is safe. */
class NotListening extends Error {}

function callControlOnce<C extends CommandName>(
  poolDir: string,
  command: C,
  args: ArgsOf<C>,
  onProgress: ((p: OperationProgress) => void) | undefined,
  timeoutMs: number,
): Promise<ResultOf<C>> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socketPath(poolDir));
    let connected = false;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      reject(err);
    };
    const arm = () => {
      clearTimeout(timer);
      const late = () =>
        new ControlError(`the daemon of ${poolDir} did not answer '${command}' within ${timeoutMs / 1000}s`, 'UNAVAILABLE');
      timer = setTimeout(() => fail(late()), timeoutMs);
    };
    arm();
    // Replies can be large (a long event log), but not without end.
    const reader = new LineReader(256 * 1024 * 1024);
    sock.on('connect', () => {
      connected = true;
      sock.write(JSON.stringify({ command, args, traceId: currentTrace()?.traceId } satisfies Request) + '\n');
    });
    sock.on('data', (chunk: Buffer) => {
      if (settled) return;
      let lines: string[];
      try {
        lines = reader.push(chunk);
      } catch (err) {
        fail(new ControlError(`the daemon of ${poolDir} sent a reply that is too long: ${(err as Error).message}`, 'INTERNAL'));
        return;
      }
      for (const line of lines) {
        let msg: Reply | ProgressLine;
        try {
          msg = JSON.parse(line) as Reply | ProgressLine;
          if (typeof msg !== 'object' || msg === null) throw new Error('not an object');
        } catch {
          fail(new ControlError(`the daemon of ${poolDir} sent a reply that is not a JSON object`, 'INTERNAL'));
          return;
        }
        if ('progress' in msg) {
          arm();
          onProgress?.(msg.progress);
          continue;
        }
        settled = true;
        clearTimeout(timer);
        sock.end();
        // The one place a result takes its command's type: the daemon answers with what the table says.
        if (msg.ok) resolve(msg.result as ResultOf<C>);
        // A daemon of this version sends `status`; an older one only `code` (its own values).
        else
          reject(
            new ControlError(msg.error, isControlCode(msg.status) ? msg.status : controlCode(msg.code, msg.usage), { usage: msg.usage }),
          );
        return;
      }
    });
    sock.on('error', (err: NodeJS.ErrnoException) => {
      if (!connected && (err.code === 'ENOENT' || err.code === 'ECONNREFUSED')) fail(new NotListening(err.message));
      else fail(unreachable(poolDir, err.message));
    });
    // Closed without a reply (the daemon stopped, or it holds too many connections): the caller may retry.
    sock.on('close', () => {
      fail(new ControlError(`the daemon of ${poolDir} closed the connection without answering '${command}'`, 'UNAVAILABLE'));
    });
  });
}
