/**
 * The engine's layers, bottom first: a module may import from its own folder and the layers below
 * it, never from one above (docs/ARCHITECTURE.md draws them). Folders on one line are one layer and
 * do not import each other. Checked by `npm run check:deps` (part of `npm run lint`, which
 * scripts/test.sh runs in CI) and by test/build/structure.test.ts.
 */
const LAYERS = [
  ['util'],
  ['observability'],
  ['integrity', 'redundancy'],
  ['config'],
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

const sideways = LAYERS.filter((layer) => layer.length > 1).flatMap((layer) =>
  layer.map((folder) => ({
    name: `no-sideways-from-${folder}`,
    comment: `engine/${folder} may not import from the other folders of its layer`,
    severity: 'error',
    from: { path: folders([[folder]]) },
    to: { path: folders([layer.filter((f) => f !== folder)]) },
  })),
);

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
    ...sideways,
    {
      name: 'every-folder-has-a-layer',
      comment: 'a new engine folder gets a place in LAYERS first',
      severity: 'error',
      from: { path: '^engine/', pathNot: folders(LAYERS) },
      to: {},
    },
    {
      name: 'every-imported-folder-has-a-layer',
      comment: 'a new engine folder gets a place in LAYERS first',
      severity: 'error',
      from: {},
      to: { path: '^engine/', pathNot: folders(LAYERS) },
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
