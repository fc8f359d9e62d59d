import { Type, type Static } from '@sinclair/typebox';
import { SHARED_PARENTS as SHARED_PARENT_DIRS, SYSTEM_TREES } from '../../../engine/pool/disk-path.js';
import { DEFAULT_TIER, EXTENT_SIZE_RULE, TIERS, type Tier } from '../../../engine/config/rules.js';
import { POLICY_PATTERN } from '../../../engine/redundancy/policy.js';

/**
 * The DynamicFSPool resource: the one definition behind its CRD schema (crds/) and the operator's
 * and node agent's TypeScript types.
 */
export const GROUP = 'dynamicfs.io';
export const VERSION = 'v1alpha1';
export const POOL_PLURAL = 'dynamicfspools';
export const CONFIG_PLURAL = 'dynamicfsconfigs';

const QUANTITY = '^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|K|M|G|T|P|k)?$';
const CRON = '^(@(hourly|daily|weekly|monthly|yearly))$|^(\\S+\\s+){4,5}\\S+$';
const DNS_NAME = '^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$';

/** A Kubernetes quantity as a string ('64Mi', '1Gi', '1048576'): plain patterns keep the CRD's CEL budget free. */
const Quantity = (description: string) => Type.String({ pattern: QUANTITY, maxLength: 32, description });

/**
 * A disk may never be in or at a system directory, nor be a shared parent itself (engine/pool/disk-path.ts
 * says why; the node agent applies the same lists). Below /tmp, /var/tmp, /mnt, /srv, /data ... disks
 * stay possible: which roots a cluster really allows is the chart's admission policy (diskPaths) and
 * the node agent's --disk-root.
 */
export const SYSTEM_DIRS = SYSTEM_TREES;
export const SHARED_PARENTS = SHARED_PARENT_DIRS.filter((d) => d !== '/');
const SYSTEM_DIR_RE = `^(${SYSTEM_DIRS.join('|')})(/|$)|^(${SHARED_PARENTS.join('|')})$`;

/**
 * CEL rules on a disk path, checked by the API server on every write of a pool (one message per rule
 * so a refusal says which one). A path must already be in its one normal form: these rules and the
 * chart's admission policy compare it with directories as text, where '/mnt/disks/../etc' would pass
 * for a path below /mnt/disks, so '.', '..', '//' and a trailing '/' are refused, not cleaned.
 */
const DISK_PATH_RULES = [
  { rule: "self != '/'", message: "disk path must not be '/': a disk is a directory of its own, never the node's root filesystem" },
  {
    rule: "!self.endsWith('/') && !self.contains('//') && !self.matches('/[.][.]?(/|$)')",
    message: "disk path must be normalized: no '.' or '..' component, no '//', no trailing '/'",
  },
  {
    rule: `!self.matches('${SYSTEM_DIR_RE}')`,
    message: `disk path must not be in or at a system directory (${SYSTEM_DIRS.join(', ')}) nor be a shared parent itself (${SHARED_PARENTS.join(', ')}): a disk is a directory of its own`,
  },
];

export const DiskSpecSchema = Type.Object(
  {
    path: Type.String({
      pattern: '^/[^\\x00]*$',
      maxLength: 1024,
      'x-kubernetes-validations': DISK_PATH_RULES,
      description: `Directory (or mounted device) on the node that holds fragments. Absolute and normalized (no '.', '..', '//' or trailing '/'); not '/', not in or at ${SYSTEM_DIRS.join(', ')}, not ${SHARED_PARENTS.join(', ')} itself. The installation's admission policy may narrow it to its disk roots.`,
    }),
    tier: Type.Optional(Type.Unsafe<Tier>({ type: 'string', enum: [...TIERS], description: `Storage tier (default ${DEFAULT_TIER}).` })),
    capacity: Type.Optional(Quantity('Cap on the bytes this disk may hold (several disks can share one filesystem).')),
    failureDomain: Type.Optional(
      Type.String({
        pattern: '^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$',
        maxLength: 63,
        'x-kubernetes-validations': [
          { rule: "self != 'auto'", message: "failure domain 'auto' is reserved (leave the field out to have it found from the devices)" },
        ],
        description:
          'The failure domain this disk is in (an enclosure, a controller), when the node cannot tell from its devices; fragments of one extent never share a domain. Default: found from the device under the path.',
      }),
    ),
  },
  { additionalProperties: false },
);

export const PoolSpecSchema = Type.Object(
  {
    nodeName: Type.String({ minLength: 1, maxLength: 253, pattern: DNS_NAME, description: 'Node that holds the disks. Immutable.' }),
    disks: Type.Array(DiskSpecSchema, {
      minItems: 1,
      maxItems: 64,
      description: 'Disks of the pool. Removing one drains it first (confirm it in confirmDiskRemoval).',
    }),
    redundancy: Type.Optional(
      Type.String({
        pattern: POLICY_PATTERN,
        maxLength: 16,
        description: "Default policy: 'replication:N' or 'erasure:K+M' (default replication:2).",
      }),
    ),
    extentSize: Type.Optional(Quantity(`Extent size, ${EXTENT_SIZE_RULE} (default 1Mi). Immutable.`)),
    configRef: Type.Optional(Type.String({ maxLength: 253, pattern: DNS_NAME, description: 'Name of a DynamicFSConfig.' })),
    scrub: Type.Optional(
      Type.Object(
        {
          schedule: Type.Optional(
            Type.String({
              pattern: CRON,
              maxLength: 64,
              description: "Cron schedule of scrubs: five fields ('0 3 * * 0'), six with seconds first, or '@weekly'; empty: none.",
            }),
          ),
          repair: Type.Optional(Type.Boolean({ description: 'Scheduled and requested scrubs repair what they find (default true).' })),
        },
        { additionalProperties: false },
      ),
    ),
    requests: Type.Optional(
      Type.Object(
        {
          scrub: Type.Optional(
            Type.String({
              maxLength: 64,
              description: 'Set to a new value to ask for a scrub now; status.acknowledged.scrub answers with the same value once it ran.',
            }),
          ),
          rebuild: Type.Optional(
            Type.String({
              maxLength: 64,
              description: 'Set to a new value to ask for a rebuild now; acknowledged in status.acknowledged.rebuild.',
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
    confirmDiskRemoval: Type.Optional(
      Type.Array(Type.String({ maxLength: 1024 }), {
        maxItems: 64,
        description: 'Disk paths that may be drained and removed: a disk dropped from spec.disks stays until listed here.',
      }),
    ),
  },
  { additionalProperties: false },
);
export type PoolSpec = Static<typeof PoolSpecSchema>;

export const ConditionSchema = Type.Object({
  type: Type.String({ maxLength: 316 }),
  status: Type.Unsafe<'True' | 'False' | 'Unknown'>({ type: 'string', enum: ['True', 'False', 'Unknown'] }),
  observedGeneration: Type.Optional(Type.Integer({ minimum: 0 })),
  lastTransitionTime: Type.String({ format: 'date-time' }),
  reason: Type.String({ maxLength: 1024, pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$' }),
  message: Type.String({ maxLength: 32768 }),
});
export type Condition = Static<typeof ConditionSchema>;

const Int = (description?: string) => Type.Integer({ minimum: 0, ...(description ? { description } : {}) });

export const DiskStatusSchema = Type.Object({
  path: Type.String(),
  id: Type.Optional(Type.String()),
  tier: Type.Optional(Type.String()),
  health: Type.String({ description: 'healthy, degraded, suspect, draining, failed, or pending (not added yet) / removed.' }),
  reason: Type.Optional(Type.String()),
  capacity: Type.Optional(Int()),
  used: Type.Optional(Int()),
  errors: Type.Optional(Type.Object({ read: Int(), write: Int(), checksum: Int() })),
  lastProbe: Type.Optional(Type.String()),
  identity: Type.Optional(Type.String({ description: 'Pool and disk id recorded in the disk identity file.' })),
  failureDomain: Type.Optional(
    Type.String({ description: 'The failure domain of the disk (named in the spec, or found from its devices).' }),
  ),
  device: Type.Optional(Type.String({ description: 'The device the node found under the disk path.' })),
});

export const PoolStatusSchema = Type.Object({
  observedGeneration: Type.Optional(Int()),
  conditions: Type.Optional(Type.Array(ConditionSchema)),
  health: Type.Optional(Type.String({ description: 'healthy, degraded or critical (from the node).' })),
  poolId: Type.Optional(Type.String()),
  disks: Type.Optional(Type.Array(DiskStatusSchema)),
  diskCount: Type.Optional(Type.String({ description: 'Healthy disks out of all, for kubectl get.' })),
  extents: Type.Optional(Type.Object({ healthy: Int(), degraded: Int(), unrecoverable: Int() })),
  bytesAtRisk: Type.Optional(Int()),
  failureDomains: Type.Optional(
    Type.Object({
      count: Int('Failure domains of the disks that take new data.'),
      short: Type.Array(Type.String(), { description: 'Policies in use that need more failure domains than that.' }),
      sharedExtents: Int('Extents with fragments together in one failure domain.'),
      allowShared: Type.Boolean({ description: 'The pool lets fragments share a domain (tests and demos): their redundancy is illusory.' }),
    }),
  ),
  capacity: Type.Optional(
    Type.Object({
      raw: Int(),
      used: Int(),
      free: Int(),
      usable: Int(),
      rawText: Type.Optional(Type.String()),
      usedText: Type.Optional(Type.String()),
    }),
  ),
  lastScrub: Type.Optional(
    Type.Object({ time: Type.String(), result: Type.String(), issues: Int(), repaired: Int(), unrecoverable: Int() }),
  ),
  operation: Type.Optional(
    Type.Object({
      kind: Type.String(),
      startedAt: Type.String(),
      progress: Type.Number({ minimum: 0, maximum: 1 }),
      extentsDone: Int(),
      extentsTotal: Int(),
    }),
  ),
  acknowledged: Type.Optional(
    Type.Object({
      scrub: Type.Optional(Type.String({ description: 'The last spec.requests.scrub the node ran.' })),
      rebuild: Type.Optional(Type.String({ description: 'The last spec.requests.rebuild the node ran.' })),
      scheduledScrub: Type.Optional(Type.String({ description: 'The last status.scrubDue the node ran.' })),
      rebuildWanted: Type.Optional(Type.String({ description: 'The last status.rebuildWanted the node ran.' })),
    }),
  ),
  reasons: Type.Optional(Type.Array(Type.String(), { description: 'Why the node sees the pool as less than healthy.' })),
  removalsApproved: Type.Optional(Type.Array(Type.String(), { description: 'Disk paths the operator approved for draining and removal.' })),
  nextScrub: Type.Optional(Type.String({ description: 'When the operator will ask for the next scheduled scrub.' })),
  scrubDue: Type.Optional(
    Type.String({ description: 'Set by the operator when a scheduled scrub is due: the node runs it and acknowledges it.' }),
  ),
  rebuildWanted: Type.Optional(Type.String({ description: 'Set by the operator when a disk failed and auto-rebuild is on.' })),
  nodeReportTime: Type.Optional(Type.String({ description: 'When the node side last reported.' })),
  volumes: Type.Optional(Int()),
});
export type PoolStatus = Static<typeof PoolStatusSchema>;

export interface DynamicFSPool {
  apiVersion: string;
  kind: 'DynamicFSPool';
  metadata: {
    name: string;
    generation?: number;
    uid?: string;
    resourceVersion?: string;
    finalizers?: string[];
    deletionTimestamp?: string;
    creationTimestamp?: string;
  };
  spec: PoolSpec;
  status?: PoolStatus;
}
