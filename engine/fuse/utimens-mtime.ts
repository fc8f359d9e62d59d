import { createRequire } from 'node:module';
import path from 'node:path';

/**
 * fuse-native 2.2.6 passes utimens' access time to JS twice and drops the modification time:
 * its C glue stores both in its per-thread struct (fuse_thread_locals_t: atime at byte 104, mtime
 * at byte 112, as size_t milliseconds on x86-64 and arm64) and then converts l->atime for both
 * arguments. That struct lives in a Buffer the binding hands every handler as its first argument,
 * so the modification time can be read back from it.
 *
 * The layout is checked on every call: the atime in the struct must equal the one passed. If it
 * does not (another build of the binding), the call goes through as the binding made it.
 */
const ATIME_AT = 104;
const MTIME_AT = 112;

/** fuse-native's per-operation dispatcher: the thread's struct, the opcode, then the operation's arguments. */
export type NativeHandler = (locals: Buffer, op: number, ...args: unknown[]) => unknown;

export function withTrueMtime(handler: NativeHandler, onUnknownLayout: () => void): NativeHandler {
  return (locals, op, ...args) => {
    const [p, atimeLow, atimeHigh] = args;
    if (locals.length >= MTIME_AT + 8 && locals.readUInt32LE(ATIME_AT) === atimeLow && locals.readUInt32LE(ATIME_AT + 4) === atimeHigh) {
      return handler(locals, op, p, atimeLow, atimeHigh, locals.readUInt32LE(MTIME_AT), locals.readUInt32LE(MTIME_AT + 4));
    }
    onUnknownLayout();
    return handler(locals, op, ...args);
  };
}

/** The opcode fuse-native's native side uses for utimens (an index into its handler array). */
export function utimensOpcode(): number {
  const require = createRequire(import.meta.url);
  const main = require.resolve('fuse-native');
  // The same loader fuse-native uses, so this is the module it already loaded.
  const load = createRequire(main)('node-gyp-build') as (dir: string) => { op_utimens: number };
  return load(path.dirname(main)).op_utimens;
}
