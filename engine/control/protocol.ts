/**
 * The control protocol: every command the daemon serves, with its arguments and its result, and the
 * codes its failures carry. The daemon, the CLI, the CSI plugin and the node agent share this table.
 *
 * Imports are type-only (erased when compiled): importing this module loads nothing of the engine,
 * so the CSI plugin and the node agent can use it without opening pools (test/unit/control-errors.test.ts).
 */
import type { DiskReport, PoolStatus } from '../report/status.js';
import type { FsckReport } from '../check/fsck.js';
import type { ConfigFile, EngineConfig } from '../config/schema.js';
import type { Diagnosis } from '../report/diagnose.js';
import type { DrainReport } from '../heal/drain.js';
import type { ProbeResult } from '../heal/probe.js';
import type { RebuildReport } from '../heal/rebuild.js';
import type { ScrubReport } from '../heal/scrub.js';
import type { EngineEvent } from '../observability/event-log.js';
import type { HttpReply } from '../observability/http-server.js';
import type { HealthThresholds } from '../pool/health-policy.js';
import type { OperationProgress } from '../pool/pool.js';
import type { VolumeRecord } from '../metadata/volume-table.js';
import type { CommandArgs } from './args.js';

export type { CommandArgs, HttpReply, OperationProgress };

/** A volume as the daemon describes it: its row, its usage and where it is published. */
export interface VolumeInfo extends VolumeRecord {
  inodeLimit: number;
  usage: { bytes: number; inodes: number };
  /** Targets it is published at. */
  published: string[];
}

/**
 * Arguments are type aliases (not interfaces) of JSON scalars, so each is a CommandArgs. Lists travel
 * as JSON text (diskRoots, protectedDirs, flags, context). A daemon takes arguments as sent and checks
 * them field by field: a caller of another version may send anything.
 */
type NoArgs = Record<string, never>;
type DiskGuardArgs = {
  allowAnyPath?: boolean;
  failureDomain?: string | null;
  allowSharedDomain?: boolean;
  /** JSON list of absolute paths: where the node agent allows disks (the chart's diskPaths). */
  diskRoots?: string;
  /** JSON list of absolute paths no disk may touch. */
  protectedDirs?: string;
};
export type TuneArgs = {
  'auto-rebuild'?: boolean;
  'rebuild-concurrency'?: number;
  'rebuild-bandwidth'?: number;
  'errors-suspect'?: number;
  'read-errors-failed'?: number;
  'slow-io-ms'?: number;
  'slow-ops-degraded'?: number;
};

interface Command<A extends CommandArgs, R> {
  args: A;
  result: R;
}

/** Commands that act on an open pool: served by its daemon, or run in-process by the CLI when none is. */
export interface PoolCommands {
  /**
   * `mounted`: whether the daemon's mount is in its /proc/self/mountinfo (false once removed from
   * outside: the daemon is ending); null without a mount. Daemons before it sent none.
   */
  ping: Command<NoArgs, { pool: string; id: string; mountpoint: string | null; daemon: boolean; pid: number; mounted?: boolean | null }>;
  status: Command<NoArgs, PoolStatus>;
  'list-disks': Command<NoArgs, { disks: DiskReport[] }>;
  'add-disk': Command<
    { disk: string; tier?: string; capacity?: number | null } & DiskGuardArgs,
    {
      disk: { id: string; path: string; tier: string; capacity: number | null; failureDomain: string; device: string };
      recognised: boolean;
      warning?: string;
    }
  >;
  'set-failure-domain': Command<
    { disk: string; domain: string },
    {
      disk: string;
      failureDomain: string;
      named: boolean;
      device: string;
      warning?: string;
    }
  >;
  'set-disk-health': Command<
    { disk: string; state: string; reason?: string },
    {
      disk: string;
      from: string;
      to: string;
      reason: string;
      verification?: { verified: number; bad: number };
    }
  >;
  tune: Command<
    TuneArgs,
    {
      autoRebuild: boolean;
      rebuild: { concurrency: number; bandwidthBytes?: number };
      thresholds: HealthThresholds;
    }
  >;
  config: Command<NoArgs, { file: ConfigFile; config: EngineConfig }>;
  /** `file`: the configuration document as JSON text; `source`: where it came from (for messages). */
  'config-apply': Command<
    { file: string; source: string },
    {
      changed: string[];
      live: string[];
      restart: string[];
      creationOnly: string[];
    }
  >;
  diagnose: Command<NoArgs, Diagnosis>;
  'probe-disks': Command<NoArgs, { probes: ProbeResult[] }>;
  'set-policy': Command<{ path: string; policy: string }, { path: string; policy: string }>;
  scrub: Command<{ repair?: boolean; bandwidth?: number; restart?: boolean }, ScrubReport>;
  'scrub-control': Command<{ action: 'pause' | 'resume' }, { paused: boolean }>;
  rebuild: Command<{ concurrency?: number; bandwidth?: number }, RebuildReport>;
  'remove-disk': Command<{ disk: string }, DrainReport>;
  'replace-disk': Command<{ old: string; new: string } & DiskGuardArgs, { added: { id: string; path: string }; removed: DrainReport }>;
  fsck: Command<{ repair?: boolean; graceSeconds?: number }, FsckReport>;
  // Volumes: the CSI plugin's commands (and `dynamicfs volume`).
  /** `context`: JSON object of strings; `inodes`: the inode limit (default from the capacity). */
  'volume-create': Command<
    {
      name: string;
      capacity: number;
      policy?: string;
      tier?: string;
      ephemeral?: boolean;
      context?: string;
      inodes?: number;
    },
    { volume: VolumeInfo; created: boolean }
  >;
  'volume-delete': Command<{ name: string }, { deleted: boolean }>;
  'volume-list': Command<NoArgs, { volumes: VolumeInfo[] }>;
  'volume-get': Command<{ name: string }, { volume: VolumeInfo | null }>;
  'volume-expand': Command<{ name: string; capacity: number }, { volume: VolumeInfo }>;
  'volume-capacity': Command<{ policy?: string; tier?: string }, { available: number }>;
  /** `root`: the directory the target must lie strictly inside; `flags`: JSON list of mount flags. */
  'volume-publish': Command<
    {
      name: string;
      target: string;
      root?: string;
      readonly?: boolean;
      flags?: string;
    },
    { target: string; published: boolean }
  >;
  /** `recorded` is absent from a daemon of an older version (it unmounted whatever was there). */
  'volume-unpublish': Command<{ target: string }, { target: string; volume: string | null; recorded?: boolean }>;
  /** `inodeLimit` is absent from a daemon of an older version. */
  'volume-stats': Command<
    { name: string; target?: string },
    {
      capacity: number;
      used: number;
      inodes: number;
      inodeLimit?: number;
      condition: { abnormal: boolean; message: string };
    }
  >;
}

/** Commands only a running daemon serves. */
export interface DaemonCommands {
  shutdown: Command<NoArgs, { stopping: boolean }>;
  /** `network`: the request came from a network address (only /metrics and /health are served then). */
  http: Command<{ path: string; network?: boolean }, HttpReply>;
  events: Command<{ since?: string; level?: string; component?: string }, EngineEvent[]>;
}

/** Every command the control socket serves. */
export interface ControlCommands extends PoolCommands, DaemonCommands {}

export type CommandName = keyof ControlCommands;
export type PoolCommandName = keyof PoolCommands;
export type DaemonCommandName = keyof DaemonCommands;
export type ArgsOf<C extends CommandName> = ControlCommands[C]['args'];
export type ResultOf<C extends CommandName> = ControlCommands[C]['result'];

// ---- Failures ----

/**
 * What kind of failure a control call ended with, named as gRPC names its status codes (the CSI
 * plugin passes them on as such). The daemon sets it from the class of what was thrown.
 */
export const CONTROL_CODES = [
  'INVALID_ARGUMENT',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'PERMISSION_DENIED',
  'UNIMPLEMENTED',
  'UNAVAILABLE',
  'INTERNAL',
] as const;
export type ControlCode = (typeof CONTROL_CODES)[number];

/** The code of an engine errno (an FsError's code). Also what older daemons sent for a failing FsError. */
export const ERRNO_CODES: Readonly<Record<string, ControlCode>> = {
  ENOENT: 'NOT_FOUND',
  EEXIST: 'ALREADY_EXISTS',
  EINVAL: 'INVALID_ARGUMENT',
  ENAMETOOLONG: 'INVALID_ARGUMENT',
  ENOTDIR: 'INVALID_ARGUMENT',
  EISDIR: 'INVALID_ARGUMENT',
  ELOOP: 'INVALID_ARGUMENT',
  ERANGE: 'INVALID_ARGUMENT',
  EFBIG: 'INVALID_ARGUMENT',
  ENOSPC: 'RESOURCE_EXHAUSTED',
  EDQUOT: 'RESOURCE_EXHAUSTED',
  EMFILE: 'RESOURCE_EXHAUSTED',
  EMLINK: 'RESOURCE_EXHAUSTED',
  EBUSY: 'FAILED_PRECONDITION',
  ENOTEMPTY: 'FAILED_PRECONDITION',
  EROFS: 'FAILED_PRECONDITION',
  EXDEV: 'FAILED_PRECONDITION',
  EACCES: 'PERMISSION_DENIED',
  EPERM: 'PERMISSION_DENIED',
  ENOSYS: 'UNIMPLEMENTED',
  EOPNOTSUPP: 'UNIMPLEMENTED',
};

/** Codes daemons of older versions sent (a VolumeError's own names), beside errno names. */
export const LEGACY_CODES: Readonly<Record<string, ControlCode>> = {
  INVALID: 'INVALID_ARGUMENT',
  EXISTS: 'ALREADY_EXISTS',
  EXHAUSTED: 'RESOURCE_EXHAUSTED',
  BUSY: 'FAILED_PRECONDITION',
  NOT_FOUND: 'NOT_FOUND',
};

export function isControlCode(v: unknown): v is ControlCode {
  return typeof v === 'string' && (CONTROL_CODES as readonly string[]).includes(v);
}

/**
 * The code of a failure as it arrived: one of ours, or one an older daemon sent; a usage error of an
 * older daemon carried none (INVALID_ARGUMENT), nor did anything unexpected (INTERNAL).
 */
export function controlCode(wire: unknown, usage = false): ControlCode {
  if (isControlCode(wire)) return wire;
  if (typeof wire === 'string') {
    if (Object.hasOwn(LEGACY_CODES, wire)) return LEGACY_CODES[wire];
    if (Object.hasOwn(ERRNO_CODES, wire)) return ERRNO_CODES[wire];
  }
  return usage ? 'INVALID_ARGUMENT' : 'INTERNAL';
}

/**
 * A control call that failed: refused by the daemon (its message and code), or the daemon could not
 * be reached or did not answer (UNAVAILABLE, raised by the caller's side).
 */
export class ControlError extends Error {
  readonly code: ControlCode;
  /** The daemon called it bad usage (wrong arguments, unknown command): the CLI exits 2. */
  readonly usage: boolean;
  /**
   * Nothing answered: the socket is missing or refuses connections, or the connection broke. The
   * daemon is not running (any mount of it is dead). False for a daemon that is slow to answer.
   */
  readonly unreachable: boolean;

  constructor(message: string, code: ControlCode, opts: { usage?: boolean; unreachable?: boolean } = {}) {
    super(message);
    this.name = 'ControlError';
    this.code = code;
    this.usage = opts.usage === true;
    this.unreachable = opts.unreachable === true;
  }
}

/**
 * A reply line: a result, or a failure with its code (`usage` kept for clients of older versions).
 * A code is one of CONTROL_CODES from a daemon of this version; older daemons sent others (see controlCode).
 */
/**
 * A reply. A failure carries `status`, its ControlCode, and `code`, what daemons before the control
 * codes sent (a volume error's own code or an errno name, else nothing): a CSI plugin of that
 * version reads only `code`, so a daemon keeps sending it.
 */
export type Reply = { ok: true; result: unknown } | { ok: false; error: string; usage: boolean; code?: string; status?: ControlCode };
/** Sent before the reply while a long operation runs. */
export interface ProgressLine {
  progress: OperationProgress;
}
export interface Request {
  command: string;
  args: CommandArgs;
  traceId?: string;
}
