import { stringify } from 'yaml';
import { checkConfigFile, resolveConfig } from './load.js';
import type { ConfigFile, DeepPartial, EngineConfig, EngineConfigDocument, PresetName, SectionName } from './schema.js';

/**
 * Builds a configuration in code, for programs that embed the engine:
 *   new ConfigBuilder().preset('testing').set('reliability', { auto_scrub: true, scrub_interval: '1h' }).build()
 * Every step is checked against the same schema the YAML loader uses.
 */
export class ConfigBuilder {
  private doc: ConfigFile = {};

  static from(file: ConfigFile): ConfigBuilder {
    const b = new ConfigBuilder();
    b.doc = structuredClone(checkConfigFile(file, 'ConfigBuilder.from'));
    return b;
  }

  preset(name: PresetName): this {
    this.doc.preset = name;
    return this;
  }

  set<S extends SectionName>(section: S, values: DeepPartial<EngineConfigDocument[S]>): this {
    const next = structuredClone(this.doc) as Record<string, unknown>;
    next[section] = deepMerge((next[section] ?? {}) as Record<string, unknown>, values as Record<string, unknown>);
    this.doc = checkConfigFile(next, `ConfigBuilder.set('${section}')`);
    return this;
  }

  /** The document as a config file would hold it (preset plus overrides). */
  document(): ConfigFile {
    return structuredClone(this.doc);
  }

  toYAML(): string {
    return stringify(this.doc);
  }

  build(env?: NodeJS.ProcessEnv): EngineConfig {
    return resolveConfig(this.doc, { env, source: 'ConfigBuilder' });
  }
}

function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) {
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && out[k] && typeof out[k] === 'object'
        ? deepMerge(out[k] as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}
