import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.bench-cache/', 'bench-results/', 'test/fixtures/broken-*'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  {
    // The dashboard's page runs in a browser, as a classic script.
    files: ['src/dashboard/page/**'],
    languageOptions: { globals: { ...globals.browser }, sourceType: 'script' },
  },
  {
    // Fixtures are tiny apps in every module flavour, CommonJS included.
    files: ['test/fixtures/**'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
