import { EXTENT_SIZE_ALIGN, isExtentSize, MAX_EXTENT_SIZE, MIN_EXTENT_SIZE } from './rules.js';
import { listenProblem } from '../util/listen.js';
import { readFile } from 'node:fs/promises';
import type { TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { parseDocument } from 'yaml';
import { parsePolicy } from '../redundancy/policy.js';
import { UsageError } from '../util/errors.js';
import { parseSize } from '../util/units.js';
import { presetBase, presetOverrides } from './presets.js';
import {
  ConfigFileSchema,
  EngineConfigSchema,
  PRESET_NAMES,
  type ConfigFile,
  type EngineConfig,
  type EngineConfigDocument,
  type PresetName,
} from './schema.js';

/** One thing wrong with a configuration: where, what was there, what was expected. */
export interface ConfigProblem {
  field: string;
  value: unknown;
  expected: string;
}

/** Bad input, like a bad CLI argument (exit code 2). */
export class ConfigError extends UsageError {
  constructor(
    readonly source: string,
    readonly problems: ConfigProblem[],
  ) {
    super(
      `${source}: ${problems.map((p) => `${p.field}: ${p.value === undefined ? '' : `got ${JSON.stringify(p.value)}, `}expected ${p.expected}`).join('; ')}`,
    );
    this.name = 'ConfigError';
  }
}

/** Environment variables that override operational fields (containers set these). */
export const ENV_OVERRIDES: Record<string, string> = {
  DYNAMICFS_LOG_LEVEL: 'monitoring.log_level',
  DYNAMICFS_LOG_FORMAT: 'monitoring.log_format',
  DYNAMICFS_METRICS_LISTEN: 'monitoring.metrics_listen',
  DYNAMICFS_EVENT_LOG_SIZE: 'monitoring.event_log_size',
  DYNAMICFS_AUTO_SCRUB: 'reliability.auto_scrub',
  DYNAMICFS_AUTO_REBUILD: 'reliability.auto_rebuild',
};

function schemaAt(root: TSchema, pointer: string[]): TSchema | undefined {
  let s: TSchema | undefined = root;
  for (const key of pointer)
    s = s?.type === 'array' ? (s.items as TSchema | undefined) : (s?.properties as Record<string, TSchema> | undefined)?.[key];
  return s;
}

/** What a field accepts, in words, from its schema. */
function expectation(s: TSchema | undefined): string {
  if (!s) return 'nothing here';
  if (s['x-dynamicfs-unit'] === 'bytes')
    return `a size such as 1MiB, 512KiB or a whole number of bytes${s.anyOf?.[0]?.minimum ? ` (at least ${s.anyOf[0].minimum})` : ''}`;
  if (s['x-dynamicfs-unit'] === 'seconds') return 'a duration such as 30s, 15m, 12h, 7d, 1w or a whole number of seconds';
  if (s.enum) return `one of ${(s.enum as string[]).join(', ')}`;
  if (s.type === 'boolean') return 'true or false';
  if (s.type === 'integer') return `a whole number from ${s.minimum ?? '-∞'} to ${s.maximum ?? '∞'}`;
  if (s.type === 'number') return `a number from ${s.minimum ?? '-∞'} to ${s.maximum ?? '∞'}`;
  if (s.type === 'array') return `a list of at most ${s.maxItems ?? 'any number of'} items, each ${expectation(s.items as TSchema)}`;
  if (s.type === 'object') return `a mapping with the fields ${Object.keys(s.properties ?? {}).join(', ')}`;
  if (s.type === 'string') return String(s.description ?? `text matching ${s.pattern}`);
  return 'a valid value';
}

function problemsOf(schema: TSchema, value: unknown): ConfigProblem[] {
  const seen = new Set<string>();
  const out: ConfigProblem[] = [];
  for (const e of Value.Errors(schema, value)) {
    const pointer = e.path.split('/').filter(Boolean);
    const field = pointer.join('.') || '(top level)';
    if (seen.has(field)) continue;
    seen.add(field);
    if (e.message === 'Unexpected property') {
      const parent = schemaAt(schema, pointer.slice(0, -1));
      out.push({ field, value: e.value, expected: `no such field (known here: ${Object.keys(parent?.properties ?? {}).join(', ')})` });
    } else {
      out.push({ field, value: e.value, expected: expectation(schemaAt(schema, pointer)) });
    }
  }
  return out;
}

/** Parses YAML (JSON is YAML) and checks it against the config file schema. */
export function parseConfigText(text: string, source: string): ConfigFile {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length)
    throw new ConfigError(source, [
      { field: '(document)', value: undefined, expected: `valid YAML: ${doc.errors[0].message.split('\n')[0]}` },
    ]);
  const value: unknown = doc.toJS() ?? {};
  return checkConfigFile(value, source);
}

export function checkConfigFile(value: unknown, source: string): ConfigFile {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ConfigError(source, [
      {
        field: '(top level)',
        value,
        expected: 'a mapping with preset and the sections storage, performance, reliability, monitoring, security',
      },
    ]);
  }
  const problems = problemsOf(ConfigFileSchema, value);
  if (problems.length) throw new ConfigError(source, problems);
  return value as ConfigFile;
}

export async function readConfigFile(file: string): Promise<ConfigFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [{ field: '(file)', value: undefined, expected: `a readable file (${(err as Error).message})` }]);
  }
  return parseConfigText(text, file);
}

function merge(target: Record<string, unknown>, over: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(over)) {
    if (v !== null && typeof v === 'object' && !Array.isArray(v) && typeof target[k] === 'object')
      merge(target[k] as Record<string, unknown>, v as Record<string, unknown>);
    else if (v !== undefined) target[k] = v;
  }
}

/** Overrides from the environment, as a config file fragment (values typed by the schema). */
export function envOverrides(env: NodeJS.ProcessEnv): ConfigFile {
  const out: Record<string, Record<string, unknown>> = {};
  for (const [name, field] of Object.entries(ENV_OVERRIDES)) {
    const raw = env[name];
    if (raw === undefined || raw === '') continue;
    const [section, key] = field.split('.');
    const s = schemaAt(EngineConfigSchema, [section, key]);
    let v: unknown = raw;
    if (s?.type === 'boolean') v = raw === 'true' ? true : raw === 'false' ? false : raw;
    else if (s?.type === 'integer' && /^-?\d+$/.test(raw)) v = Number(raw);
    (out[section] ??= {})[key] = v;
  }
  return checkConfigFile(out, 'environment');
}

const toBytes = (v: number | string, field: string): number => (typeof v === 'number' ? v : parseSize(v, field));
const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };
const toSeconds = (v: number | string): number => (typeof v === 'number' ? v : Number(v.slice(0, -1)) * DURATION_UNITS[v.slice(-1)]);

/** Replaces sizes with bytes and durations with seconds, as the schema marks them. */
function normalise(schema: TSchema, value: unknown, field: string): unknown {
  if (schema.type === 'object' && value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value))
      out[k] = normalise((schema.properties as Record<string, TSchema>)[k], v, field ? `${field}.${k}` : k);
    return out;
  }
  if (schema['x-dynamicfs-unit'] === 'bytes') return toBytes(value as number | string, field);
  if (schema['x-dynamicfs-unit'] === 'seconds') return toSeconds(value as number | string);
  return value;
}

/** Checks that span fields or need more than a pattern. */
function crossFieldProblems(c: EngineConfig): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const E = c.storage.extent_size;
  if (!isExtentSize(E))
    out.push({
      field: 'storage.extent_size',
      value: E,
      expected: `a multiple of ${EXTENT_SIZE_ALIGN} bytes from ${MIN_EXTENT_SIZE} to ${MAX_EXTENT_SIZE} bytes`,
    });
  try {
    parsePolicy(c.storage.redundancy);
  } catch (err) {
    out.push({ field: 'storage.redundancy', value: c.storage.redundancy, expected: (err as Error).message });
  }
  const listen = c.monitoring.metrics_listen;
  const listenWrong = listen === '' ? null : listenProblem(listen);
  if (listenWrong) out.push({ field: 'monitoring.metrics_listen', value: listen, expected: `HOST:PORT: ${listenWrong}` });
  if (c.storage.deduplication)
    out.push({ field: 'storage.deduplication', value: true, expected: 'false (deduplication is not available in this version)' });
  const d = c.monitoring.diagnostics;
  if (d.capacity_warning_percent >= d.capacity_critical_percent) {
    out.push({
      field: 'monitoring.diagnostics.capacity_warning_percent',
      value: d.capacity_warning_percent,
      expected: `less than capacity_critical_percent (${d.capacity_critical_percent})`,
    });
  }
  if (c.reliability.scrub_interval < 1)
    out.push({ field: 'reliability.scrub_interval', value: c.reliability.scrub_interval, expected: 'at least 1 second' });
  if (c.monitoring.history_interval < 1)
    out.push({ field: 'monitoring.history_interval', value: c.monitoring.history_interval, expected: 'at least 1 second' });
  return out;
}

/** Preset, then the file's overrides, then the environment's: a complete, checked configuration. */
export function resolveConfig(file: ConfigFile = {}, options: { env?: NodeJS.ProcessEnv; source?: string } = {}): EngineConfig {
  const source = options.source ?? 'configuration';
  checkConfigFile(file, source);
  const preset: PresetName = file.preset ?? 'production';
  if (!PRESET_NAMES.includes(preset))
    throw new ConfigError(source, [{ field: 'preset', value: preset, expected: `one of ${PRESET_NAMES.join(', ')}` }]);
  const doc = presetBase() as unknown as Record<string, unknown>;
  merge(doc, presetOverrides(preset) as Record<string, unknown>);
  const { preset: _preset, ...overrides } = file;
  merge(doc, overrides as Record<string, unknown>);
  if (options.env) merge(doc, envOverrides(options.env) as Record<string, unknown>);
  const problems = problemsOf(EngineConfigSchema, doc);
  if (problems.length) throw new ConfigError(source, problems);
  let resolved: EngineConfig;
  try {
    resolved = normalise(EngineConfigSchema, doc, '') as EngineConfig;
  } catch (err) {
    throw new ConfigError(source, [{ field: '(size)', value: undefined, expected: (err as Error).message }]);
  }
  const cross = crossFieldProblems(resolved);
  if (cross.length) throw new ConfigError(source, cross);
  return resolved;
}

/** The full document (sizes and durations as written) a preset resolves to, for `config show`. */
export function presetDocument(preset: PresetName): EngineConfigDocument {
  const doc = presetBase() as unknown as Record<string, unknown>;
  merge(doc, presetOverrides(preset) as Record<string, unknown>);
  return doc as unknown as EngineConfigDocument;
}

/** Which changed fields a running daemon applies at once; the rest need a restart. */
export const LIVE_FIELDS = new Set([
  'monitoring.log_level',
  'monitoring.log_format',
  'monitoring.logging',
  'monitoring.event_log_size',
  'monitoring.slow_op_ms',
  'monitoring.diagnostics',
  'monitoring.history_interval',
  'monitoring.history_samples',
  'monitoring.network_endpoints',
  'security.disk_roots',
  'reliability.auto_rebuild',
  'reliability.rebuild_concurrency',
  'reliability.rebuild_bandwidth',
  'reliability.auto_scrub',
  'reliability.scrub_interval',
  'reliability.scrub_repair',
  'reliability.scrub_bandwidth',
  'reliability.errors_suspect',
  'reliability.read_errors_failed',
  'reliability.slow_io_ms',
  'reliability.slow_ops_degraded',
  'reliability.allow_shared_failure_domains',
]);

/** Set when a pool is created; an existing pool keeps its own (set-policy changes its default policy). */
export const CREATION_FIELDS = ['storage.extent_size', 'storage.redundancy', 'storage.checksum'];

/** Fields whose values differ between two configurations, as dotted paths (a section's leaves). */
export function changedFields(a: EngineConfig, b: EngineConfig): string[] {
  const out: string[] = [];
  const walk = (x: unknown, y: unknown, at: string): void => {
    if (x && y && typeof x === 'object' && typeof y === 'object') {
      for (const k of new Set([...Object.keys(x), ...Object.keys(y)]))
        walk((x as Record<string, unknown>)[k], (y as Record<string, unknown>)[k], at ? `${at}.${k}` : k);
    } else if (x !== y) out.push(at);
  };
  walk(a, b, '');
  return out;
}

export function isLiveField(field: string): boolean {
  return LIVE_FIELDS.has(field) || [...LIVE_FIELDS].some((f) => field.startsWith(`${f}.`));
}
