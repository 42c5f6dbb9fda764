import { defineConfig } from 'vitest/config';

// Native tests run in vitest's default `forks` pool: each test file in its
// own process, so a crash or a leaked pool cannot reach another file.
// Tests that need threads spawn their own Workers (test/fixtures).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
