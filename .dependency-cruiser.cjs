/**
 * Import rules of ../shared/DESIGN.md ("Layout"), enforced by `npm run lint`.
 *   shared: leaf · config, planner, engine: shared only · mesh, protocols: shared (+ libp2p)
 *   models: shared, protocols · node: everything · api: shared + node · cli: config, node, api, models, shared
 * Native code (koffi, node-llama-cpp) only inside src/engine.
 */
const layer = (from, allowed) => ({
  name: `${from}-imports`,
  comment: `src/${from} may import only: ${allowed.join(', ') || 'nothing in src'}`,
  severity: 'error',
  from: { path: `^src/${from}/` },
  to: { path: '^src/', pathNot: [`^src/${from}/`, ...allowed.map((a) => `^src/${a}/`)] }
})

module.exports = {
  forbidden: [
    layer('shared', []),
    layer('config', ['shared']),
    layer('planner', ['shared']),
    layer('engine', ['shared']),
    layer('mesh', ['shared']),
    layer('protocols', ['shared']),
    layer('models', ['shared', 'protocols']),
    layer('api', ['shared', 'node']),
    layer('cli', ['config', 'node', 'api', 'models', 'shared']),
    {
      name: 'native-only-in-engine',
      comment: 'koffi and node-llama-cpp are touched only by src/engine',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/engine/' },
      to: { path: 'node_modules/(koffi|node-llama-cpp)/' }
    },
    {
      name: 'planner-is-pure',
      comment: 'the planner does no I/O: no node: modules',
      severity: 'error',
      from: { path: '^src/planner/' },
      to: { dependencyTypes: ['core'] , pathNot: '^node:crypto$|^crypto$' }
    },
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
    { name: 'not-to-unresolvable', severity: 'error', from: {}, to: { couldNotResolve: true } }
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'], extensions: ['.ts', '.js', '.json'] }
  }
}
