import path from 'node:path';
import { isPoolCommand, poolCommands } from '../control/commands.js';
import { UsageError } from '../util/errors.js';
import { callControl } from '../control/client.js';
import type { ArgsOf, PoolCommandName, ResultOf } from '../control/protocol.js';
import { FileSystem } from '../fs/filesystem.js';
import { PoolBusyError, readLockOwner } from '../pool/lock.js';
import { Pool, type OperationProgress } from '../pool/pool.js';
import { formatBytes } from '../util/units.js';

let jsonOutput = false;

export function setJsonOutput(on: boolean): void {
  jsonOutput = on;
}

export function isJsonOutput(): boolean {
  return jsonOutput;
}

export function emit(result: unknown, human: string): void {
  process.stdout.write(jsonOutput ? JSON.stringify(result, null, 2) + '\n' : human + '\n');
}

/** A one-line progress display on a terminal (bytes, extents, rate, ETA); silent otherwise. */
function terminalProgress(label: string): ((p: OperationProgress) => void) | undefined {
  if (!process.stderr.isTTY || jsonOutput) return undefined;
  const start = Date.now();
  return (p) => {
    const secs = (Date.now() - start) / 1000;
    const bytes = p.bytesRead ?? p.bytesWritten ?? 0;
    const rate = secs > 0 ? bytes / secs : 0;
    const eta = p.extentsDone > 0 ? ((p.extentsTotal - p.extentsDone) * secs) / p.extentsDone : 0;
    process.stderr.write(
      `\r${label}: ${p.extentsDone}/${p.extentsTotal} extents, ${formatBytes(bytes)}, ${formatBytes(rate)}/s, ETA ${eta.toFixed(0)}s   `,
    );
    if (p.extentsDone === p.extentsTotal) process.stderr.write('\n');
  };
}

/** Runs a pool command in this process, or through the daemon that has the pool mounted. */
export async function onPool<C extends PoolCommandName>(poolDir: string, command: C, args: ArgsOf<C>): Promise<ResultOf<C>> {
  const abs = path.resolve(poolDir);
  for (let attempt = 0; attempt < 2; attempt++) {
    if (readLockOwner(abs)) return callControl(abs, command, args, terminalProgress(command));
    let pool: Pool;
    try {
      pool = await Pool.open(abs);
    } catch (err) {
      if (err instanceof PoolBusyError && attempt === 0) continue;
      throw err;
    }
    try {
      const fs = new FileSystem(pool);
      try {
        if (!isPoolCommand(command)) throw new UsageError(`unknown command '${command}'`);
        return await poolCommands[command]({ pool, fs, mountpoint: null, progress: terminalProgress(command) }, args);
      } finally {
        await fs.close();
      }
    } finally {
      await pool.close();
    }
  }
  throw new Error(`pool ${abs} changed owner while the command ran; try again`);
}
