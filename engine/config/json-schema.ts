import { ConfigFileSchema, EngineConfigSchema } from './schema.js';

/** Plain JSON Schema of a config file (preset plus overrides): what DynamicFSConfig's spec accepts. */
export function configFileJsonSchema(): Record<string, unknown> {
  return JSON.parse(JSON.stringify(ConfigFileSchema)) as Record<string, unknown>;
}

/** Plain JSON Schema of a complete, resolved configuration. */
export function engineConfigJsonSchema(): Record<string, unknown> {
  return JSON.parse(JSON.stringify(EngineConfigSchema)) as Record<string, unknown>;
}
