import path from 'node:path';
import { Option, type Command } from 'commander';
import { stringify } from 'yaml';
import { configFileJsonSchema } from '../config/json-schema.js';
import { presetDocument, readConfigFile, resolveConfig } from '../config/load.js';
import { PRESET_DESCRIPTIONS } from '../config/presets.js';
import { configReference } from '../config/reference.js';
import { PRESET_NAMES, type PresetName } from '../config/schema.js';
import { emit, isJsonOutput, onPool } from './on-pool.js';

/** `dynamicfs config ...`: validate, show and list configurations; apply one to a pool. */
export function registerConfigCommands(program: Command): void {
  const config = program.command('config').description('engine configuration: presets, validation, the schema, applying a file to a pool');

  config
    .command('validate')
    .description('check a configuration file; exit 0 when valid, 2 with every problem named when not')
    .argument('<file>')
    .option('--json', 'machine-readable output')
    .action(async (file: string) => {
      const doc = await readConfigFile(file);
      const resolved = resolveConfig(doc, { env: process.env, source: file });
      emit(
        { valid: true, file: path.resolve(file), preset: doc.preset ?? 'production', config: resolved },
        `${file}: valid (preset ${doc.preset ?? 'production'})`,
      );
    });

  config
    .command('show')
    .description("print a complete configuration: a preset, a file resolved over its preset, or a pool's")
    .addOption(new Option('--preset <name>', 'preset to show').choices([...PRESET_NAMES]))
    .option('--file <file>', 'resolve this file over its preset')
    .option('--pool <pool>', "show a pool's stored configuration, resolved")
    .addOption(new Option('--format <format>', 'output format').choices(['yaml', 'json']).default('yaml'))
    .option('--json', 'same as --format json')
    .action(async (o: { preset?: PresetName; file?: string; pool?: string; format: string }) => {
      let doc: unknown;
      if (o.pool) doc = (await onPool(o.pool, 'config', {})).config;
      else if (o.file) doc = resolveConfig(await readConfigFile(o.file), { env: process.env, source: o.file });
      else doc = presetDocument(o.preset ?? 'production');
      process.stdout.write(o.format === 'json' || isJsonOutput() ? JSON.stringify(doc, null, 2) + '\n' : stringify(doc));
    });

  config
    .command('presets')
    .description('list the presets and what sets them apart')
    .option('--json', 'machine-readable output')
    .action(() => {
      const list = PRESET_NAMES.map((name) => ({ name, description: PRESET_DESCRIPTIONS[name], config: presetDocument(name) }));
      emit(list, list.map((p) => `${p.name.padEnd(17)} ${p.description}${p.name === 'production' ? ' (default)' : ''}`).join('\n'));
    });

  config
    .command('schema')
    .description('print the JSON Schema of a configuration file (also the DynamicFSConfig spec)')
    .action(() => {
      process.stdout.write(JSON.stringify(configFileJsonSchema(), null, 2) + '\n');
    });

  config
    .command('reference')
    .description('print the configuration reference (docs/CONFIGURATION.md) generated from the schema and presets')
    .action(() => {
      process.stdout.write(configReference());
    });

  config
    .command('apply')
    .description('store a configuration file in a pool; a mounted pool applies live fields at once and names those that need a remount')
    .argument('<pool>')
    .argument('<file>')
    .option('--json', 'machine-readable output')
    .action(async (poolDir: string, file: string) => {
      const doc = await readConfigFile(file);
      resolveConfig(doc, { env: process.env, source: file });
      const r = await onPool(poolDir, 'config-apply', { file: JSON.stringify(doc), source: path.resolve(file) });
      emit(
        r,
        r.changed.length === 0
          ? 'no change'
          : [
              `changed: ${r.changed.join(', ')}`,
              r.live.length ? `applied now: ${r.live.join(', ')}` : '',
              r.restart.length ? `take effect at the next mount: ${r.restart.join(', ')}` : '',
              r.creationOnly.length
                ? `apply to new pools only (this pool keeps its layout; 'set-policy' changes its default policy): ${r.creationOnly.join(', ')}`
                : '',
            ]
              .filter(Boolean)
              .join('\n'),
      );
    });
}
