import { stringify } from 'yaml';
import { configFileJsonSchema } from '../../../engine/config/json-schema.js';
import { ConditionSchema, CONFIG_PLURAL, GROUP, POOL_PLURAL, PoolSpecSchema, PoolStatusSchema, VERSION } from './pool.js';
import { toStructural, type JsonSchema } from './structural.js';

/** Cross-field rules the API server checks with CEL, each with the message it gives. */
const POOL_RULES = [
  { rule: 'self.nodeName == oldSelf.nodeName', message: 'spec.nodeName is immutable: a pool lives on one node' },
  {
    rule: '!has(oldSelf.extentSize) || (has(self.extentSize) && self.extentSize == oldSelf.extentSize)',
    message: 'spec.extentSize is immutable once set',
  },
  {
    rule: "!has(self.redundancy) || !self.redundancy.startsWith('erasure:') || int(self.redundancy.substring(8).split('+')[0]) + int(self.redundancy.substring(8).split('+')[1]) <= size(self.disks)",
    message: 'spec.redundancy: erasure k+m needs at least k+m disks in spec.disks',
  },
  {
    rule: "!has(self.redundancy) || !self.redundancy.startsWith('replication:') || int(self.redundancy.substring(12)) <= size(self.disks)",
    message: 'spec.redundancy: replication:N needs at least N disks in spec.disks',
  },
];

function poolCrd(): JsonSchema {
  const spec = toStructural(PoolSpecSchema);
  spec['x-kubernetes-validations'] = POOL_RULES;
  (spec.properties as Record<string, JsonSchema>).disks['x-kubernetes-list-type'] = 'map';
  (spec.properties as Record<string, JsonSchema>).disks['x-kubernetes-list-map-keys'] = ['path'];
  // nodeName is checked on create too (a transition rule only runs on update, so the create rule lives on spec).
  const status = toStructural(PoolStatusSchema);
  const conditions = (status.properties as Record<string, JsonSchema>).conditions;
  conditions.items = toStructural(ConditionSchema);
  conditions['x-kubernetes-list-type'] = 'map';
  conditions['x-kubernetes-list-map-keys'] = ['type'];
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${POOL_PLURAL}.${GROUP}` },
    spec: {
      group: GROUP,
      scope: 'Cluster',
      names: {
        plural: POOL_PLURAL,
        singular: 'dynamicfspool',
        kind: 'DynamicFSPool',
        listKind: 'DynamicFSPoolList',
        shortNames: ['dfp'],
        categories: ['dynamicfs'],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: 'Node', type: 'string', jsonPath: '.spec.nodeName' },
            { name: 'Ready', type: 'string', jsonPath: ".status.conditions[?(@.type=='Ready')].status" },
            { name: 'Health', type: 'string', jsonPath: '.status.health' },
            { name: 'Disks', type: 'string', jsonPath: '.status.diskCount' },
            { name: 'Capacity', type: 'string', jsonPath: '.status.capacity.rawText' },
            { name: 'Used', type: 'string', jsonPath: '.status.capacity.usedText' },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              required: ['spec'],
              properties: { apiVersion: { type: 'string' }, kind: { type: 'string' }, metadata: { type: 'object' }, spec: spec, status },
            },
          },
        },
      ],
    },
  };
}

function configCrd(): JsonSchema {
  const spec = toStructural(configFileJsonSchema());
  const condition = toStructural(ConditionSchema);
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${CONFIG_PLURAL}.${GROUP}` },
    spec: {
      group: GROUP,
      scope: 'Cluster',
      names: {
        plural: CONFIG_PLURAL,
        singular: 'dynamicfsconfig',
        kind: 'DynamicFSConfig',
        listKind: 'DynamicFSConfigList',
        shortNames: ['dfc'],
        categories: ['dynamicfs'],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: 'Preset', type: 'string', jsonPath: '.spec.preset' },
            { name: 'Valid', type: 'string', jsonPath: ".status.conditions[?(@.type=='Valid')].status" },
            { name: 'Pools', type: 'integer', jsonPath: '.status.poolCount' },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec,
                status: {
                  type: 'object',
                  properties: {
                    observedGeneration: { type: 'integer' },
                    conditions: {
                      type: 'array',
                      items: condition,
                      'x-kubernetes-list-type': 'map',
                      'x-kubernetes-list-map-keys': ['type'],
                    },
                    pools: { type: 'array', items: { type: 'string' } },
                    poolCount: { type: 'integer' },
                  },
                },
              },
            },
          },
        },
      ],
    },
  };
}

const HEADER = '# Generated by `npm run gen:crds` from operator/src/api/pool.ts and engine/config/schema.ts; do not edit.\n';

export function crdFiles(): Record<string, string> {
  return {
    [`${GROUP}_${POOL_PLURAL}.yaml`]: HEADER + stringify(poolCrd(), { lineWidth: 0 }),
    [`${GROUP}_${CONFIG_PLURAL}.yaml`]: HEADER + stringify(configCrd(), { lineWidth: 0 }),
  };
}
