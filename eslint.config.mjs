import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      '.sim-build/**',
      'node_modules/**',
      'src/generated/**',
      'data/**',
      'coverage/**',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_' },
      ],
    },
  },
  {
    // The simulator runs this code in virtual time from a seed: every timer, clock read and
    // random choice goes through the injected Clock/Random (src/core/clock.ts). The gRPC
    // transports run on real sockets, which the simulator replaces: they keep Node's timers.
    files: [
      'src/node/**/*.ts',
      'src/replication/**/*.ts',
      'src/controller/**/*.ts',
      'src/client/**/*.ts',
      'src/wal/**/*.ts',
      'src/state/**/*.ts',
    ],
    ignores: ['**/*.test.ts', 'src/client/http2-transport.ts', 'src/client/grpc-transport.ts'],
    rules: {
      'no-restricted-globals': [
        'error',
        ...['setTimeout', 'setInterval', 'setImmediate', 'clearTimeout', 'clearInterval'].map(
          (name) => ({ name, message: `use the injected Clock (clock.${name}), not the global` }),
        ),
        { name: 'clearImmediate', message: 'use the injected Clock (clock.runSoon)' },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Date', property: 'now', message: 'use the injected Clock (nowUnixMs)' },
        { object: 'performance', property: 'now', message: 'use the injected Clock (monotonicMs)' },
        { object: 'process', property: 'hrtime', message: 'use the injected Clock (monotonicMs)' },
        { object: 'process', property: 'nextTick', message: 'use the injected Clock (runSoon)' },
        { object: 'Math', property: 'random', message: 'use the injected Random' },
      ],
      'no-restricted-syntax': [
        'error',
        {
          selector: "NewExpression[callee.name='Date'][arguments.length=0]",
          message: 'use the injected Clock (nowUnixMs), not new Date()',
        },
      ],
      'no-restricted-imports': [
        'error',
        {
          paths: ['crypto', 'node:crypto'].map((name) => ({
            name,
            importNames: ['randomBytes', 'randomUUID', 'randomInt', 'getRandomValues'],
            message: 'use randomId (src/core/ids.ts) with the injected Random',
          })),
        },
      ],
    },
  },
  {
    files: ['**/*.mjs', '**/*.js'],
    languageOptions: { globals: globals.node },
  },
);
