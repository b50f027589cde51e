import { defineConfig } from 'vitest/config';

// Workspace packages resolve to their TypeScript sources through the `switchboard-source` export
// condition, so tests need no build step for the package under test. Tests that spawn processes
// (the demo, crash tests) run the built output, which `npm test` builds first.
const resolve = { conditions: ['switchboard-source', 'node', 'import', 'default'] };

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
          exclude: ['**/node_modules/**', '**/dist/**'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          fileParallelism: true,
          maxWorkers: 2,
        },
      },
    ],
  },
});
