import { LOG_LEVELS } from '../observability/log-levels.js';
import { POLICY_PATTERN } from '../redundancy/policy.js';
import { EXTENT_SIZE_RULE, MIN_EXTENT_SIZE } from './rules.js';
import { CHECKSUM_ALGORITHMS } from '../integrity/algorithms.js';
import { Kind, Type, TypeRegistry, type Static, type TObject, type TProperties, type TSchema } from '@sinclair/typebox';

/**
 * The engine's configuration schema: the one definition behind the YAML loader, the TypeScript
 * types, the presets' validation and the JSON Schema of the DynamicFSConfig custom resource.
 * Field names are snake_case, as they appear in YAML and in the custom resource.
 */

const SIZE_PATTERN = '^[0-9]+(\\.[0-9]+)?\\s*([kKmMgGtT]i?[bB]?|[bB])?$';
const DURATION_PATTERN = '^[0-9]+(s|m|h|d|w)$';
/** A TCP port, 1 to 65535. */
const PORT = '([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])';

/** Bytes: an integer, or a string such as `1MiB`, `512KiB`, `10G`. */
const Size = (description: string, minimum = 0) =>
  Type.Union([Type.Integer({ minimum }), Type.String({ pattern: SIZE_PATTERN })], {
    description,
    'x-kubernetes-int-or-string': true,
    'x-dynamicfs-unit': 'bytes',
  });
/** Seconds: an integer, or a string such as `30s`, `15m`, `12h`, `7d`, `1w`. */
const Duration = (description: string) =>
  Type.Union([Type.Integer({ minimum: 0 }), Type.String({ pattern: DURATION_PATTERN })], {
    description,
    'x-kubernetes-int-or-string': true,
    'x-dynamicfs-unit': 'seconds',
  });
const Int = (minimum: number, maximum: number, description: string) => Type.Integer({ minimum, maximum, description });
const Flag = (description: string) => Type.Boolean({ description });
// A plain JSON Schema `enum` (what CRDs and editors understand), checked by a registered kind.
TypeRegistry.Set<{ enum: string[] }>('StringEnum', (schema, value) => typeof value === 'string' && schema.enum.includes(value));
const Enum = <T extends string>(values: readonly T[], description: string) =>
  Type.Unsafe<T>({ [Kind]: 'StringEnum', type: 'string', enum: [...values], description });
const Section = <T extends TProperties>(properties: T, description: string): TObject<T> =>
  Type.Object(properties, { additionalProperties: false, description });

export const PRESET_NAMES = ['production', 'development', 'testing', 'high-performance'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export const StorageSchema = Section(
  {
    extent_size: Size(`Extent size of new pools (${EXTENT_SIZE_RULE}); fixed when the pool is created.`, MIN_EXTENT_SIZE),
    redundancy: Type.String({ pattern: POLICY_PATTERN, description: "Default redundancy policy: 'replication:N' or 'erasure:K+M'." }),
    checksum: Enum(
      CHECKSUM_ALGORITHMS,
      'Checksum algorithm of new pools; fixed when the pool is created (each extent records the one it was written with).',
    ),
    max_file_size: Size('Largest file allowed; writes beyond it fail with EFBIG.', 1),
    compression: Enum(['none'] as const, "Extent compression. Only 'none' exists in this version."),
    deduplication: Type.Boolean({ description: 'Extent deduplication. Not available in this version: must be false.' }),
  },
  'How data is laid out.',
);

export const PerformanceSchema = Section(
  {
    write_batching: Flag(
      'Gather writes into whole extents before encoding them. Off: a partly written extent is flushed as soon as a writer moves past it.',
    ),
    batch_size: Size('Bytes of partly written extents a file may hold in memory before they are flushed anyway.', 4096),
    parallel_writes: Int(1, 64, 'Extents encoded and written at once, across all files.'),
    metadata_cache: Flag('Keep metadata pages in memory (SQLite page cache).'),
    metadata_cache_size: Size('Metadata page cache size.', 0),
    data_cache_size: Size('Decoded-extent read cache size.', 0),
    read_ahead: Flag('Read ahead on sequential reads (kernel read-ahead and extent prefetch).'),
    read_ahead_size: Size('Read-ahead window.', 0),
  },
  'Caches, batching and parallelism.',
);

export const ReliabilitySchema = Section(
  {
    auto_rebuild: Flag('Rebuild automatically when a disk turns failed.'),
    rebuild_concurrency: Int(1, 64, 'Extents rebuilt at once.'),
    rebuild_bandwidth: Size('Bytes per second a rebuild may write; 0 means unlimited.'),
    auto_scrub: Flag('Scrub the pool on a schedule while it is mounted.'),
    scrub_interval: Duration('Time between the end of one scheduled scrub and the start of the next.'),
    scrub_repair: Flag('Scheduled scrubs repair what they find.'),
    scrub_bandwidth: Size('Bytes per second a scrub may read; 0 means unlimited.'),
    errors_suspect: Int(1, 1_000_000, 'Read, checksum or write errors after which a healthy disk turns suspect.'),
    read_errors_failed: Int(1, 1_000_000, 'Read errors after which a disk turns failed.'),
    slow_io_ms: Int(1, 3_600_000, 'A fragment read or write slower than this counts as slow (milliseconds).'),
    slow_ops_degraded: Int(1, 1_000_000, 'Slow operations after which a healthy disk turns degraded.'),
    allow_shared_failure_domains: Flag(
      'Let fragments of one extent share a failure domain (disks on one device) when the domains are too few, instead of refusing the write: redundancy that one device failure can defeat, for tests and demos; status, diagnostics, metrics and /health then report it.',
    ),
  },
  'Self-healing: rebuild, scrub and disk health thresholds.',
);

export const DiagnosticsThresholdsSchema = Section(
  {
    capacity_warning_percent: Int(1, 100, 'Utilisation (pool or disk) that raises a warning.'),
    capacity_critical_percent: Int(1, 100, 'Utilisation that raises a critical issue.'),
    read_latency_warning_ms: Int(1, 3_600_000, 'p99 fragment read latency that raises a warning (milliseconds).'),
    write_latency_warning_ms: Int(1, 3_600_000, 'p99 fragment write latency that raises a warning (milliseconds).'),
    disk_error_warning: Int(1, 1_000_000, 'I/O errors recorded on one disk that raise a warning.'),
    rebuild_success_warning_percent: Int(0, 100, 'Share of rebuilt extents that must succeed; below it is an error.'),
    scrub_overdue_factor: Type.Number({
      minimum: 1,
      maximum: 100,
      description: 'A scrub is overdue after this many scrub intervals without a completed one.',
    }),
  },
  'Thresholds of the diagnostics.',
);

export const MonitoringSchema = Section(
  {
    metrics: Flag('Collect Prometheus metrics.'),
    metrics_listen: Type.String({
      pattern: `^$|^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]*):${PORT}$`,
      maxLength: 270,
      description:
        "Address the mount daemon serves /metrics and /health on, such as '127.0.0.1:9090' (an empty host: every interface; port 1 to 65535); empty: none.",
    }),
    network_endpoints: Enum(
      ['metrics-and-health', 'all'] as const,
      "What a metrics_listen address other than loopback serves: 'metrics-and-health' (/metrics, /health, /healthz, /readyz; /events and /diagnostics name files, disks and errors and stay on loopback and the control socket) or 'all'.",
    ),
    logging: Flag('Write log lines.'),
    log_level: Enum(LOG_LEVELS, 'Lowest level written.'),
    log_format: Enum(['auto', 'json', 'pretty'] as const, "Log format; 'auto' is pretty on a terminal and JSON otherwise."),
    event_log_size: Int(16, 1_000_000, 'Events kept in the in-memory event log.'),
    slow_op_ms: Int(1, 3_600_000, 'A FUSE operation slower than this gets a trace id and a timing event (milliseconds).'),
    history_samples: Int(16, 100_000, 'Usage and error samples kept in the pool for growth and MTTF estimates.'),
    history_interval: Duration('Time between two history samples.'),
    diagnostics: DiagnosticsThresholdsSchema,
  },
  'Metrics, logging, events and diagnostics.',
);

export const SecuritySchema = Section(
  {
    audit_logging: Flag('Log every change to the namespace (create, remove, rename, chmod, chown, truncate) with the caller.'),
    allow_other: Flag('Let users other than the mounting one use the mount (needed for pods).'),
    access_control: Enum(
      ['posix', 'none'] as const,
      "'posix': the kernel checks mode bits and owners; 'none': every caller may do everything.",
    ),
    max_open_files: Int(1, 10_000_000, 'Open file handles at most; beyond it open fails with EMFILE.'),
    max_open_files_per_volume: Int(
      1,
      10_000_000,
      'Open file handles one volume may hold, so that one tenant cannot take them all; beyond it open fails with EMFILE.',
    ),
    disk_roots: Type.Array(Type.String({ pattern: '^/[^\\x00]*$', maxLength: 4096, description: 'an absolute path' }), {
      maxItems: 64,
      description:
        "Directories disks must be at or below (add-disk refuses others unless given --allow-any-path); empty: anywhere except the system's directories.",
    }),
  },
  'Access and auditing.',
);

const SECTIONS = {
  storage: StorageSchema,
  performance: PerformanceSchema,
  reliability: ReliabilitySchema,
  monitoring: MonitoringSchema,
  security: SecuritySchema,
};
export type SectionName = keyof typeof SECTIONS;
export const SECTION_NAMES = Object.keys(SECTIONS) as SectionName[];

/** A complete configuration: every field present. */
export const EngineConfigSchema = Type.Object(SECTIONS, { additionalProperties: false, $id: 'EngineConfig' });
export type EngineConfigDocument = Static<typeof EngineConfigSchema>;

/** Makes every field optional, nested objects included: what a config file may give. */
function deepPartial(schema: TSchema): TSchema {
  if (schema.type === 'object' && schema.properties) {
    const props: TProperties = {};
    for (const [k, v] of Object.entries(schema.properties as TProperties)) props[k] = Type.Optional(deepPartial(v));
    const { properties: _p, required: _r, ...rest } = schema as TObject;
    return Type.Object(props, { ...rest, additionalProperties: false });
  }
  return schema;
}

/** A config file or DynamicFSConfig spec: a preset and overrides of any fields. */
export const ConfigFileSchema = Type.Object(
  {
    preset: Type.Optional(Enum(PRESET_NAMES, 'Preset the overrides apply to (default production).')),
    ...Object.fromEntries(SECTION_NAMES.map((n) => [n, Type.Optional(deepPartial(SECTIONS[n]))])),
  },
  { additionalProperties: false, description: 'DynamicFS engine configuration: a preset and overrides.' },
);
export type ConfigFile = { preset?: PresetName } & { [S in SectionName]?: DeepPartial<EngineConfigDocument[S]> };
export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> : T[K] };

/** Sizes and durations become numbers (bytes, seconds) once a configuration is resolved. */
type Resolved<T> = { readonly [K in keyof T]: T[K] extends object ? Resolved<T[K]> : string | number extends T[K] ? number : T[K] };
export type EngineConfig = Resolved<EngineConfigDocument>;
