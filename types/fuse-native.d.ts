// Types for the parts of fuse-native we use (the package ships none).
declare module 'fuse-native' {
  type Cb<T extends unknown[] = []> = (err: number, ...rest: T) => void;
  export interface Stat {
    mode: number;
    uid: number;
    gid: number;
    size: number;
    dev?: number;
    nlink: number;
    ino: number;
    rdev?: number;
    blksize?: number;
    blocks?: number;
    atime: number | Date;
    mtime: number | Date;
    ctime: number | Date;
  }
  export interface StatFs {
    bsize: number;
    frsize: number;
    blocks: number;
    bfree: number;
    bavail: number;
    files: number;
    ffree: number;
    favail: number;
    fsid: number;
    flag: number;
    namemax: number;
  }
  export interface Operations {
    init?(cb: Cb): void;
    getattr?(path: string, cb: Cb<[Stat?]>): void;
    fgetattr?(path: string, fd: number, cb: Cb<[Stat?]>): void;
    statfs?(path: string, cb: Cb<[StatFs?]>): void;
    readdir?(path: string, cb: Cb<[string[]?, Stat[]?]>): void;
    open?(path: string, flags: number, cb: Cb<[number?]>): void;
    create?(path: string, mode: number, cb: Cb<[number?]>): void;
    read?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (n: number) => void): void;
    write?(path: string, fd: number, buf: Buffer, len: number, pos: number, cb: (n: number) => void): void;
    flush?(path: string, fd: number, cb: Cb): void;
    fsync?(path: string, datasync: number, fd: number, cb: Cb): void;
    fsyncdir?(path: string, datasync: number, fd: number, cb: Cb): void;
    release?(path: string, fd: number, cb: Cb): void;
    truncate?(path: string, size: number, cb: Cb): void;
    ftruncate?(path: string, fd: number, size: number, cb: Cb): void;
    unlink?(path: string, cb: Cb): void;
    rename?(src: string, dest: string, cb: Cb): void;
    link?(src: string, dest: string, cb: Cb): void;
    mknod?(path: string, mode: number, dev: number, cb: Cb): void;
    symlink?(target: string, path: string, cb: Cb): void;
    readlink?(path: string, cb: Cb<[string?]>): void;
    mkdir?(path: string, mode: number, cb: Cb): void;
    rmdir?(path: string, cb: Cb): void;
    chmod?(path: string, mode: number, cb: Cb): void;
    chown?(path: string, uid: number, gid: number, cb: Cb): void;
    utimens?(path: string, atime: number, mtime: number, cb: Cb): void;
    setxattr?(path: string, name: string, value: Buffer, position: number, flags: number, cb: Cb): void;
    getxattr?(path: string, name: string, position: number, cb: Cb<[Buffer?]>): void;
    listxattr?(path: string, cb: Cb<[string[]?]>): void;
    removexattr?(path: string, name: string, cb: Cb): void;
  }
  export interface Options {
    timeout?: number | false;
    force?: boolean;
    mkdir?: boolean;
    debug?: boolean;
    allowOther?: boolean;
    defaultPermissions?: boolean;
    fsname?: string;
    subtype?: string;
    autoUnmount?: boolean;
  }
  export default class Fuse {
    constructor(mnt: string, ops: Operations, opts?: Options);
    opts: Options;
    mnt: string;
    protected _fuseOptions(): string;
    /** Builds the per-opcode dispatchers the native side calls; runs inside the constructor. */
    protected _makeHandlerArray(): ((locals: Buffer, op: number, ...args: unknown[]) => unknown)[];
    mount(cb: (err: Error | null) => void): void;
    unmount(cb: (err: Error | null) => void): void;
    static unmount(mnt: string, cb: (err: Error | null) => void): void;
  }
}
