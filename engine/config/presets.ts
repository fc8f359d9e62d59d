import type { ConfigFile, EngineConfigDocument, PresetName } from './schema.js';

/** The default: safe redundancy, weekly repairing scrubs, rebuild on failure, JSON logs. */
const production: EngineConfigDocument = {
  storage: {
    extent_size: '1MiB',
    redundancy: 'replication:2',
    checksum: 'xxh3',
    max_file_size: '16TiB',
    compression: 'none',
    deduplication: false,
  },
  performance: {
    write_batching: true,
    batch_size: '16MiB',
    parallel_writes: 4,
    metadata_cache: true,
    metadata_cache_size: '64MiB',
    data_cache_size: '64MiB',
    read_ahead: true,
    read_ahead_size: '8MiB',
  },
  reliability: {
    auto_rebuild: true,
    rebuild_concurrency: 8,
    rebuild_bandwidth: 0,
    auto_scrub: true,
    scrub_interval: '7d',
    scrub_repair: true,
    scrub_bandwidth: 0,
    errors_suspect: 3,
    read_errors_failed: 20,
    slow_io_ms: 2000,
    slow_ops_degraded: 5,
    allow_shared_failure_domains: false,
  },
  monitoring: {
    metrics: true,
    metrics_listen: '',
    network_endpoints: 'metrics-and-health',
    logging: true,
    log_level: 'info',
    log_format: 'auto',
    event_log_size: 10_000,
    slow_op_ms: 1000,
    history_samples: 2016,
    history_interval: '1h',
    diagnostics: {
      capacity_warning_percent: 80,
      capacity_critical_percent: 95,
      read_latency_warning_ms: 200,
      write_latency_warning_ms: 500,
      disk_error_warning: 1,
      rebuild_success_warning_percent: 95,
      scrub_overdue_factor: 1.5,
    },
  },
  security: {
    audit_logging: false,
    allow_other: true,
    access_control: 'posix',
    max_open_files: 65_536,
    max_open_files_per_volume: 16_384,
    disk_roots: [],
  },
};

/** Overrides of production for each other preset. */
const OVERRIDES: Record<Exclude<PresetName, 'production'>, ConfigFile> = {
  /** A laptop: one copy, no background scrubs, verbose pretty logs, small caches. */
  development: {
    storage: { redundancy: 'replication:1' },
    performance: { metadata_cache_size: '16MiB', data_cache_size: '16MiB' },
    reliability: { auto_scrub: false },
    monitoring: { log_level: 'debug', log_format: 'pretty', event_log_size: 1000, history_interval: '10m' },
    security: { allow_other: false },
  },
  /** Test suites: small extents so tests cross extent boundaries, fast thresholds, audit on. */
  testing: {
    storage: { extent_size: '256KiB', max_file_size: '64GiB' },
    performance: { batch_size: '4MiB', metadata_cache_size: '8MiB', data_cache_size: '8MiB', read_ahead_size: '1MiB' },
    reliability: { auto_scrub: false, scrub_interval: '1h', slow_io_ms: 500 },
    monitoring: { log_level: 'debug', log_format: 'json', event_log_size: 1000, history_samples: 64, history_interval: '1m' },
    security: { audit_logging: true },
  },
  /** Throughput first: bigger extents and caches, more parallel writes, scrubs throttled to 100 MiB/s. */
  'high-performance': {
    storage: { extent_size: '4MiB' },
    performance: {
      batch_size: '64MiB',
      parallel_writes: 8,
      metadata_cache_size: '256MiB',
      data_cache_size: '512MiB',
      read_ahead_size: '32MiB',
    },
    reliability: { rebuild_concurrency: 16, scrub_bandwidth: '100MiB', scrub_interval: '14d' },
    monitoring: { log_level: 'warn' },
  },
};

export const PRESET_DESCRIPTIONS: Record<PresetName, string> = {
  production: 'safe default: replication:2, weekly repairing scrubs, auto-rebuild, JSON logs off a terminal',
  development: 'one copy, no scheduled scrubs, debug logs, small caches',
  testing: '256 KiB extents, hourly scrub interval (scheduling off), fast thresholds, audit logging',
  'high-performance': '4 MiB extents, large caches and read-ahead, 8 parallel writes, scrubs capped at 100 MiB/s',
};

export function presetBase(): EngineConfigDocument {
  return structuredClone(production);
}

export function presetOverrides(name: PresetName): ConfigFile {
  return name === 'production' ? {} : structuredClone(OVERRIDES[name]);
}
