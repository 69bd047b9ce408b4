// The import rules of src/core (docs/architecture.md), checked by `npm run check:imports` in the test
// command: no cycles; the engine imports nothing above it; methods, evaluation and relevance rules
// never name an engine (ONNX Runtime sessions, kernels, threads).
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', from: {}, to: { circular: true } },
    {
      name: 'engine-imports-nothing-above-it',
      comment: 'engine/ is the bottom layer: tensor ops, their interpreters and the traced graphs.',
      severity: 'error',
      from: { path: '^src/core/engine/' },
      to: { path: '^src/', pathNot: ['^src/core/engine/', '^src/core/tf\\.ts$', '^src/core/ort-products\\.ts$', '^src/core/onnx/(proto|normalisers)\\.ts$', '^src/core/errors\\.ts$', '^src/core/backend\\.ts$', '^src/core/normalisers\\.ts$'] },
    },
    {
      name: 'nn-below-families-and-passes',
      severity: 'error',
      from: { path: '^src/core/nn/' },
      to: { path: '^src/core/(families|passes|methods|models|context|explain|eval)' },
    },
    {
      name: 'families-below-passes-and-methods',
      severity: 'error',
      from: { path: '^src/core/families/' },
      to: { path: '^src/core/(passes|methods|context|explain|eval|onnx/run)' },
    },
    {
      name: 'methods-never-name-an-engine',
      comment: 'A method calls the context (and through it the runner); it never asks which engine runs.',
      severity: 'error',
      from: { path: '^src/core/(methods|eval)/' },
      to: { path: ['^src/core/(onnx|engine)/', '^src/core/(ort-products|parallel|wasm-kernels|fused|backend)\\.ts$', 'onnxruntime'] },
    },
    {
      name: 'core-never-imports-the-app',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: '^src/(main|preload|renderer|cli)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.node.json' },
  },
};
