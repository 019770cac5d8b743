/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  // Integration tests share one Temporal server, Kafka broker and database on a 2-core machine.
  maxWorkers: 1,
  testTimeout: 120_000,
  verbose: true,
};
