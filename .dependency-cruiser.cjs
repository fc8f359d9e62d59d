/**
 * The engine's layers, bottom first: a module may import from its own layer and the ones below it,
 * never from one above (docs/ARCHITECTURE.md draws them). Folders on one line are one layer.
 * Checked in CI by `npm run check:deps` (scripts/test.sh runs it before the tests).
 */
const LAYERS = [
  ['util'],
  ['integrity', 'redundancy'],
  ['config'],
  ['observability'],
  ['metadata'],
  ['pool'],
  ['data'],
  ['fs'],
  ['fuse'],
  ['volumes'],
  ['check'],
  ['heal'],
  ['report'],
  ['control'],
  ['daemon'],
  ['cli', 'demo'],
];

const folders = (layers) => `^engine/(${layers.flat().join('|')})/`;

const upward = LAYERS.slice(0, -1).map((layer, i) => ({
  name: `no-upward-from-${layer.join('-')}`,
  comment: `engine/${layer.join(', engine/')} may not import from a layer above it`,
  severity: 'error',
  from: { path: folders([layer]) },
  to: { path: folders(LAYERS.slice(i + 1)) },
}));

module.exports = {
  forbidden: [
    { name: 'no-circular', comment: 'no import cycles', severity: 'error', from: {}, to: { circular: true } },
    ...upward,
    {
      name: 'engine-knows-no-kubernetes',
      comment: 'the engine is below the CSI driver and the operator',
      severity: 'error',
      from: { path: '^engine/' },
      to: { path: '^(csi-driver|operator)/|@kubernetes/client-node|@grpc/' },
    },
    {
      name: 'every-folder-has-a-layer',
      comment: 'a new engine folder gets a place in LAYERS first',
      severity: 'error',
      from: { path: '^engine/', pathNot: folders(LAYERS) },
      to: {},
    },
    { name: 'no-unresolvable', severity: 'error', from: {}, to: { couldNotResolve: true } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    // csv-parse/sync and csv-stringify/sync exist only in their packages' export maps.
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
