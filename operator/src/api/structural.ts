/**
 * Turns a TypeBox (JSON Schema) definition into a Kubernetes structural schema: no $id, no
 * additionalProperties beside properties (the API server prunes unknown fields, and kubectl's strict
 * field validation names them), int-or-string unions marked as such, our own x-dynamicfs-* keys dropped.
 */
export type JsonSchema = Record<string, unknown>;

export function toStructural(schema: unknown): JsonSchema {
  const s = JSON.parse(JSON.stringify(schema)) as JsonSchema;
  return clean(s);
}

function clean(s: JsonSchema): JsonSchema {
  const out: JsonSchema = {};
  for (const [k, v] of Object.entries(s)) {
    if (k === '$id' || k.startsWith('x-dynamicfs-')) continue;
    if (k === 'additionalProperties' && v === false) continue;
    if (k === 'properties') {
      out.properties = Object.fromEntries(Object.entries(v as Record<string, JsonSchema>).map(([name, p]) => [name, clean(p)]));
    } else if (k === 'items') {
      out.items = clean(v as JsonSchema);
    } else if (k === 'anyOf') {
      out.anyOf = (v as JsonSchema[]).map(clean);
    } else if (k === 'additionalProperties' && typeof v === 'object') {
      out.additionalProperties = clean(v as JsonSchema);
    } else {
      out[k] = v;
    }
  }
  if (out['x-kubernetes-int-or-string']) {
    // Value validations may stay in the branches; a structural int-or-string has no type of its own.
    delete out.type;
  }
  return out;
}
