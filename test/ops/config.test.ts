import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Value } from '@sinclair/typebox/value';
import { ConfigBuilder } from '../../engine/config/builder.js';
import { configFileJsonSchema } from '../../engine/config/json-schema.js';
import { ConfigError, parseConfigText, presetDocument, resolveConfig } from '../../engine/config/load.js';
import { configReference } from '../../engine/config/reference.js';
import { EngineConfigSchema, PRESET_NAMES } from '../../engine/config/schema.js';
import { cleanup, cli, cliJson, tempDir } from '../helpers/env.js';

test('every preset resolves, validates against the schema, and differs where documented', () => {
  for (const name of PRESET_NAMES) {
    const c = resolveConfig({ preset: name });
    assert.ok(Value.Check(EngineConfigSchema, presetDocument(name)), `${name} document fails the schema`);
    assert.equal(typeof c.storage.extent_size, 'number');
    assert.equal(typeof c.reliability.scrub_interval, 'number');
  }
  assert.equal(resolveConfig({}).storage.redundancy, 'replication:2');
  assert.equal(resolveConfig({ preset: 'development' }).storage.redundancy, 'replication:1');
  assert.equal(resolveConfig({ preset: 'testing' }).storage.extent_size, 256 * 1024);
  assert.equal(resolveConfig({ preset: 'high-performance' }).storage.extent_size, 4 * 2 ** 20);
  assert.equal(resolveConfig({ preset: 'production' }).reliability.scrub_interval, 7 * 86_400);
});

test('a file names a preset and overrides fields; the environment overrides operational fields', () => {
  const c = resolveConfig(parseConfigText('preset: testing\nreliability:\n  rebuild_bandwidth: 64MiB\n  scrub_interval: 12h\n', 'x.yaml'), {
    env: { DYNAMICFS_LOG_LEVEL: 'error', DYNAMICFS_AUTO_SCRUB: 'true' },
  });
  assert.equal(c.storage.extent_size, 256 * 1024); // from the preset
  assert.equal(c.reliability.rebuild_bandwidth, 64 * 2 ** 20);
  assert.equal(c.reliability.scrub_interval, 12 * 3600);
  assert.equal(c.monitoring.log_level, 'error');
  assert.equal(c.reliability.auto_scrub, true);
  assert.throws(
    () => resolveConfig({}, { env: { DYNAMICFS_AUTO_REBUILD: 'maybe' } }),
    /environment: reliability\.auto_rebuild: got "maybe", expected true or false/,
  );
});

const BROKEN: [string, string, RegExp][] = [
  ['wrong type', 'reliability:\n  auto_rebuild: "yes"\n', /reliability\.auto_rebuild: got "yes", expected true or false/],
  ['wrong type (section)', 'storage: 12\n', /storage: got 12, expected a mapping with the fields extent_size/],
  [
    'unknown key',
    'monitoring:\n  log_levle: info\n',
    /monitoring\.log_levle: got "info", expected no such field \(known here: metrics, metrics_listen, network_endpoints, logging, log_level/,
  ],
  ['listen port out of range', 'monitoring:\n  metrics_listen: ":99999"\n', /monitoring\.metrics_listen: got ":99999"/],
  [
    'listen address not an address',
    'monitoring:\n  metrics_listen: "1.2.3.999:80"\n',
    /monitoring\.metrics_listen: got "1\.2\.3\.999:80", expected HOST:PORT: '1\.2\.3\.999' is not an IPv4 address/,
  ],
  ['disk root not absolute', 'security:\n  disk_roots: [mnt]\n', /security\.disk_roots\.0: got "mnt", expected an absolute path/],
  [
    'disk roots not a list',
    'security:\n  disk_roots: /mnt\n',
    /security\.disk_roots: got "\/mnt", expected a list of at most 64 items, each an absolute path/,
  ],
  ['unknown section', 'network:\n  port: 1\n', /network: got \{"port":1\}, expected no such field/],
  [
    'out of range',
    'reliability:\n  rebuild_concurrency: 0\n',
    /reliability\.rebuild_concurrency: got 0, expected a whole number from 1 to 64/,
  ],
  [
    'out of range (nested)',
    'monitoring:\n  diagnostics:\n    capacity_critical_percent: 101\n',
    /monitoring\.diagnostics\.capacity_critical_percent: got 101, expected a whole number from 1 to 100/,
  ],
  ['bad size', 'storage:\n  extent_size: 1 megabyte\n', /storage\.extent_size: got "1 megabyte", expected a size such as 1MiB/],
  [
    'bad enum',
    'monitoring:\n  log_level: loud\n',
    /monitoring\.log_level: got "loud", expected one of trace, debug, info, warn, error, fatal/,
  ],
  ['bad preset', 'preset: turbo\n', /preset: got "turbo", expected one of production, development, testing, high-performance/],
  [
    'bad duration',
    'reliability:\n  scrub_interval: 7 days\n',
    /reliability\.scrub_interval: got "7 days", expected a duration such as 30s/,
  ],
  ['bad policy', 'storage:\n  redundancy: mirror\n', /storage\.redundancy: got "mirror"/],
  [
    'cross-field',
    'monitoring:\n  diagnostics:\n    capacity_warning_percent: 96\n',
    /capacity_warning_percent: got 96, expected less than capacity_critical_percent \(95\)/,
  ],
  ['extent not 4 KiB aligned', 'storage:\n  extent_size: 5000\n', /storage\.extent_size: got 5000, expected a multiple of 4096/],
  ['unsupported feature', 'storage:\n  deduplication: true\n', /storage\.deduplication: got true, expected false/],
  ['bad YAML', 'storage:\n  extent_size: [1MiB\n', /\(document\): expected valid YAML/],
  ['duplicate key', 'storage:\n  checksum: xxh64\n  checksum: crc32c\n', /expected valid YAML: Map keys must be unique/],
  ['not a mapping', '- a\n- b\n', /\(top level\): got \["a","b"\], expected a mapping/],
];

test('broken configuration files each fail with a message naming the field, the value and what was expected', () => {
  for (const [what, text, message] of BROKEN) {
    assert.throws(
      () => resolveConfig(parseConfigText(text, 'broken.yaml'), { source: 'broken.yaml' }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError, `${what}: not a ConfigError: ${String(err)}`);
        assert.match(err.message, message, `${what}: ${err.message}`);
        return true;
      },
      what,
    );
  }
});

test('config validate, show, presets and schema at the CLI', () => {
  const root = tempDir();
  try {
    const good = path.join(root, 'good.yaml');
    fs.writeFileSync(good, 'preset: high-performance\nmonitoring:\n  log_level: debug\n');
    const v = cliJson<{ valid: boolean; config: { storage: { extent_size: number }; monitoring: { log_level: string } } }>(
      'config',
      'validate',
      good,
    );
    assert.deepEqual([v.valid, v.config.storage.extent_size, v.config.monitoring.log_level], [true, 4 * 2 ** 20, 'debug']);
    const bad = path.join(root, 'bad.yaml');
    fs.writeFileSync(bad, 'reliability:\n  errors_suspect: -1\n');
    const r = cli('config', 'validate', bad);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /bad\.yaml: reliability\.errors_suspect: got -1, expected a whole number from 1 to 1000000/);
    assert.equal(cli('config', 'validate', path.join(root, 'missing.yaml')).code, 2);
    const shown = cli('config', 'show', '--preset', 'testing');
    assert.match(shown.stdout, /extent_size: 256KiB/);
    const asJson = JSON.parse(cli('config', 'show', '--preset', 'development', '--format', 'json').stdout) as {
      storage: { redundancy: string };
    };
    assert.equal(asJson.storage.redundancy, 'replication:1');
    const presets = cliJson<{ name: string }[]>('config', 'presets');
    assert.deepEqual(
      presets.map((p) => p.name),
      [...PRESET_NAMES],
    );
    const schema = JSON.parse(cli('config', 'schema').stdout) as Record<string, unknown>;
    assert.deepEqual(schema, configFileJsonSchema());
  } finally {
    cleanup(root);
  }
});

test('the JSON Schema and the loader agree: what the schema refuses, the loader refuses', () => {
  const schema = configFileJsonSchema() as {
    properties: Record<string, { properties?: Record<string, unknown>; additionalProperties?: boolean }>;
  };
  assert.deepEqual(Object.keys(schema.properties), ['preset', 'storage', 'performance', 'reliability', 'monitoring', 'security']);
  for (const [name, section] of Object.entries(schema.properties)) {
    if (name === 'preset') continue;
    assert.equal(section.additionalProperties, false, `${name} accepts unknown keys`);
    for (const field of Object.keys(section.properties ?? {})) {
      assert.throws(
        () => parseConfigText(`${name}:\n  ${field}: {nested: [1]}\n`, 'probe.yaml'),
        ConfigError,
        `${name}.${field} accepted a nonsense value`,
      );
    }
  }
});

test('the builder API checks each step against the schema', () => {
  const c = new ConfigBuilder()
    .preset('testing')
    .set('reliability', { auto_scrub: true, scrub_interval: '1h' })
    .set('monitoring', { diagnostics: { capacity_warning_percent: 70 } })
    .build();
  assert.equal(c.reliability.auto_scrub, true);
  assert.equal(c.reliability.scrub_interval, 3600);
  assert.equal(c.monitoring.diagnostics.capacity_warning_percent, 70);
  assert.equal(c.monitoring.diagnostics.capacity_critical_percent, 95);
  assert.throws(() => new ConfigBuilder().set('reliability', { rebuild_concurrency: 1000 }), /rebuild_concurrency: got 1000/);
  const yaml = new ConfigBuilder().preset('development').set('security', { max_open_files: 10 }).toYAML();
  assert.equal(resolveConfig(parseConfigText(yaml, 'built')).security.max_open_files, 10);
});

test('init --config stores the configuration in the pool; tune and config apply change it and refuse bad values', () => {
  const root = tempDir();
  try {
    const file = path.join(root, 'pool.yaml');
    fs.writeFileSync(file, 'preset: testing\nstorage:\n  redundancy: replication:1\nreliability:\n  rebuild_concurrency: 3\n');
    const made = cliJson<{ extentSize: number; redundancy: string; preset: string }>('init', path.join(root, 'p'), '--config', file);
    assert.deepEqual([made.extentSize, made.redundancy, made.preset], [256 * 1024, 'replication:1', 'testing']);
    const shown = JSON.parse(cli('config', 'show', '--pool', path.join(root, 'p'), '--format', 'json').stdout) as {
      reliability: { rebuild_concurrency: number };
    };
    assert.equal(shown.reliability.rebuild_concurrency, 3);
    const next = path.join(root, 'next.yaml');
    fs.writeFileSync(next, 'preset: testing\nreliability:\n  rebuild_concurrency: 5\nmonitoring:\n  log_level: warn\n');
    const applied = cliJson<{ changed: string[]; live: string[]; restart: string[]; creationOnly: string[] }>(
      'config',
      'apply',
      path.join(root, 'p'),
      next,
    );
    assert.deepEqual(applied.changed.sort(), ['monitoring.log_level', 'reliability.rebuild_concurrency', 'storage.redundancy']);
    assert.deepEqual(applied.live, []); // nothing serves the pool: all at the next mount
    assert.deepEqual(applied.restart.sort(), ['monitoring.log_level', 'reliability.rebuild_concurrency']);
    assert.deepEqual(applied.creationOnly, ['storage.redundancy']);
    assert.equal(
      cliJson<{ pool: { defaultPolicy: string } }>('status', path.join(root, 'p')).pool.defaultPolicy,
      'replication:1',
      'the layout changed',
    );
    fs.writeFileSync(next, 'reliability:\n  rebuild_concurrency: 500\n');
    assert.equal(cli('config', 'apply', path.join(root, 'p'), next).code, 2);
    const after = JSON.parse(cli('config', 'show', '--pool', path.join(root, 'p'), '--format', 'json').stdout) as {
      reliability: { rebuild_concurrency: number };
    };
    assert.equal(after.reliability.rebuild_concurrency, 5, 'a refused file changed the pool');
  } finally {
    cleanup(root);
  }
});

test('docs/CONFIGURATION.md is the reference generated from the schema and presets', () => {
  const repo = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');
  const onDisk = fs.readFileSync(path.join(repo, 'docs/CONFIGURATION.md'), 'utf8');
  assert.equal(
    onDisk,
    configReference(),
    "docs/CONFIGURATION.md is stale: regenerate it with 'dynamicfs config reference > docs/CONFIGURATION.md'",
  );
});
