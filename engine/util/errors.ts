/** An error that maps onto a POSIX errno at the FUSE boundary and onto exit code 1 at the CLI. */
export class FsError extends Error {
  readonly code: ErrnoName;
  constructor(code: ErrnoName, message: string) {
    // Expected outcomes (ENOENT from a lookup, ENODATA from the getxattr the kernel sends before
    // every write) are answered thousands of times a second: no stack trace for them. EIO keeps one.
    const limit = Error.stackTraceLimit;
    if (code !== 'EIO') Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = limit;
    this.code = code;
    this.name = 'FsError';
  }
}

/** Bad usage of a command: wrong arguments or options. Exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export const ERRNO = {
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  EBADF: 9,
  EMFILE: 24,
  EACCES: 13,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  EFBIG: 27,
  ENOSPC: 28,
  EROFS: 30,
  EMLINK: 31,
  ERANGE: 34,
  ENAMETOOLONG: 36,
  ENOSYS: 38,
  ENOTEMPTY: 39,
  ELOOP: 40,
  ENODATA: 61,
  EOPNOTSUPP: 95,
  EDQUOT: 122,
} as const;
export type ErrnoName = keyof typeof ERRNO;

export function fsError(code: ErrnoName, message: string): FsError {
  return new FsError(code, message);
}

/** Negative errno for a thrown value: FsError carries its own; Node system errors carry `code`. */
export function toErrno(err: unknown): number {
  if (err instanceof FsError) return -ERRNO[err.code];
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code && code in ERRNO) return -ERRNO[code as ErrnoName];
  return -ERRNO.EIO;
}

export function isNodeError(err: unknown, code: string): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === code;
}
