// Lint for the mistakes that take a long-running module down, not for style: a promise nobody awaits or catches
// (its rejection is an unhandled rejection), a promise passed where a callback's result is ignored (an async
// listener or handler whose throw nobody sees), a `return promise` inside try that skips its catch, a thrown or
// rejected value that is not an Error (no stack, no cause in the logs). Type-aware: each rule needs the types
// tsc already computes, so the lint reads tsconfig.json and covers what it compiles (src, test, bench).
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  // wasm/ is AssemblyScript (src/pipeline/wasm-number-reader.ts loads it): asc type-checks it, tsc does not know its types.
  { ignores: ['dist/', 'coverage/', 'wasm/'] },
  {
    files: ['**/*.ts'],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { '@typescript-eslint': tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // A promise that is neither awaited, returned, caught nor marked `void` (with a comment why).
      '@typescript-eslint/no-floating-promises': 'error',
      // An async function where a void callback is expected (event listeners, setTimeout, fastify hooks of the
      // callback kind, Array#forEach): its rejection goes nowhere. Also a promise used as a condition.
      '@typescript-eslint/no-misused-promises': 'error',
      // `await` on something that is not a promise: usually a missing call or a wrong type, never intended.
      '@typescript-eslint/await-thenable': 'error',
      // `return p` inside try/catch/finally without await leaves the catch and finally blind to p's rejection.
      '@typescript-eslint/return-await': ['error', 'in-try-catch'],
      // Throwing or rejecting with a non-Error loses the stack and the cause the last-resort handler logs.
      '@typescript-eslint/only-throw-error': 'error',
      // Passing on a caught value of type unknown as it came is no such mistake: only-throw-error allows it by
      // default, and so does this.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      // An async Promise executor: a throw in it rejects nothing and is lost.
      'no-async-promise-executor': 'error',
      // A return or throw in finally silently discards the error being propagated.
      'no-unsafe-finally': 'error',
      // An empty catch swallows an error unseen; one that means to ignore it says why in a comment.
      'no-empty': ['error', { allowEmptyCatch: false }],
    },
  },
);
