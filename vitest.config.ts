import { defineConfig } from 'vitest/config';

// Workspace packages resolve to their TypeScript sources through the `switchboard-source` export
// condition, so tests need no build step for the package under test. Tests that spawn processes
// (the demo, crash tests) run the built output, which `npm test` builds first.
// No 'import' here: Vitest also hands these to Node as --conditions, and an 'import' condition
// makes CommonJS require() pick ESM entry points (breaking e.g. Express's router). Vite adds
// 'import' by itself when it resolves an ESM import.
const resolve = { conditions: ['switchboard-source', 'node', 'default'] };

// Tests whose timing must not compete with other files: crashes and restarts, and the
// at-most-once transports (which may drop messages by design when the machine is overloaded).
const faultTests = [
  'packages/**/test/**/*crash*.int.test.ts',
  'packages/**/test/**/restart*.int.test.ts',
  'packages/adapters/redis/test/pubsub.conformance.int.test.ts',
  'packages/adapters/nats/test/core-conformance.int.test.ts',
  'packages/adapters/mqtt/test/conformance.int.test.ts',
  'packages/chaos/test/**/*.int.test.ts',
];

export default defineConfig({
  resolve,
  ssr: { resolve: { conditions: resolve.conditions, externalConditions: ['switchboard-source'] } },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'fast',
          include: ['packages/**/test/**/*.test.ts', 'examples/*/test/**/*.test.ts'],
          exclude: ['**/*.int.test.ts', '**/node_modules/**', '**/dist/**'],
          testTimeout: 20_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['packages/**/test/**/*.int.test.ts', 'examples/*/test/**/*.int.test.ts'],
          exclude: ['**/node_modules/**', '**/dist/**', ...faultTests],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: true,
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
        },
      },
      {
        // The fuzz properties again, for `npm run fuzz`: many more runs (FUZZ_SCALE) and a random
        // seed (FUZZ_SEED), so no per-test time limit. The fast tier runs them bounded, fixed-seed.
        extends: true,
        test: {
          name: 'fuzz',
          include: ['packages/**/test/**/fuzz-*.test.ts'],
          exclude: ['**/*.int.test.ts', '**/node_modules/**', '**/dist/**'],
          testTimeout: 0,
          hookTimeout: 60_000,
          maxWorkers: 2,
        },
      },
      {
        // Fault tier: processes SIGKILLed and servers restarted mid-stream, counting lost messages, and
        // the at-most-once transports. One file at a time, so their timing is not at the mercy of others.
        extends: true,
        test: {
          name: 'fault',
          include: faultTests,
          exclude: ['**/node_modules/**', '**/dist/**'],
          testTimeout: 180_000,
          hookTimeout: 120_000,
          fileParallelism: false,
          maxWorkers: 1,
          sequence: { groupOrder: 2 },
        },
      },
    ],
  },
});
