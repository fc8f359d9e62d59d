import type { FileSystem } from '../fs/filesystem.js';
import type { OperationProgress, Pool } from '../pool/pool.js';
import type { CommandArgs } from './args.js';
import type { PoolCommandName, ResultOf } from './protocol.js';

/** What a pool command runs against: the open pool and its filesystem, in the daemon or the CLI. */
export interface CommandContext {
  pool: Pool;
  fs: FileSystem;
  mountpoint: string | null;
  /** Set when a daemon (mount or serve) runs the command rather than a one-shot CLI. */
  daemon?: boolean;
  /** Where long operations report progress (a terminal line in the CLI; nothing over the socket yet). */
  progress?: (p: OperationProgress) => void;
}

/**
 * A pool command: the arguments as sent (a caller of another version may send anything; each field is
 * checked), the result as protocol.ts declares it.
 */
export type PoolCommand<C extends PoolCommandName> = (ctx: CommandContext, args: CommandArgs) => Promise<ResultOf<C>>;
export type PoolCommandTable<C extends PoolCommandName = PoolCommandName> = { [K in C]: PoolCommand<K> };
