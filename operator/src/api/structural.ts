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
    // A structural int-or-string is exactly anyOf [integer, string]; the branches' own checks
    // (minimum, pattern) become a CEL rule on the field.
    const branches = (out.anyOf ?? []) as JsonSchema[];
    const int = branches.find((b) => b.type === 'integer') ?? {};
    const str = branches.find((b) => b.type === 'string') ?? {};
    delete out.type;
    out.anyOf = [{ type: 'integer' }, { type: 'string' }];
    const min = typeof int.minimum === 'number' ? int.minimum : 0;
    const pattern = typeof str.pattern === 'string' ? str.pattern : '.*';
    const maxLength = typeof str.maxLength === 'number' ? str.maxLength : 64;
    out['x-kubernetes-validations'] = [
      {
        rule: `type(self) == int ? self >= ${min} : (size(self) <= ${maxLength} && self.matches(${JSON.stringify(pattern)}))`,
        message: `must be a whole number of at least ${min}, or text matching ${pattern}`,
      },
    ];
  }
  return out;
}
