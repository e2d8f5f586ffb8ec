// Lint guardrails: type-aware strict rules plus size limits that keep modules small and readable.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Import boundaries. cli/ and test/ never import each other: what the demo shares with the tests (pod runner,
 * stand-in apps, local webhook, backend starters) is devkit/, which imports neither. Shipped code (agent/,
 * webhook/, injector/, cli/ but the demo) imports neither devkit/ nor test/: release bundles do not carry them.
 * Each entry's files are disjoint from the others', since a later config's rule options replace an earlier's.
 */
const IMPORT_BOUNDARIES = [
  {
    files: ['agent/**', 'webhook/**', 'injector/**', 'providers/**', 'cli/**'],
    ignores: ['**/*.test.ts', '**/testdata/**', 'cli/demo*.ts'],
    forbid: {
      devkit:
        'shipped code does not import devkit/ (release bundles do not carry it); only the demo (cli/demo*.ts) and tests do',
      test: 'shipped code does not import test/',
    },
  },
  {
    files: ['cli/demo*.ts', 'cli/**/*.test.ts'],
    forbid: { test: 'cli/ does not import test/: what the demo shares with the tests belongs in devkit/' },
  },
  {
    files: ['test/**'],
    forbid: {
      cli: 'test/ does not import cli/: what the tests share with the demo belongs in devkit/; run the CLI as a process',
    },
  },
  {
    files: ['devkit/**'],
    forbid: {
      cli: 'devkit/ does not import cli/: the demo builds on devkit/, not the reverse',
      test: 'devkit/ does not import test/: the demo uses devkit/ and must not pull in tests',
    },
  },
];

/** A relative import climbing to the repository's <folder>/; dynamic import() is checked by its own selector. */
const climbsTo = (folder) => `^(\\.\\.\\/)+${folder}\\/`;

const importBoundaryConfigs = IMPORT_BOUNDARIES.map(({ files, ignores = [], forbid }) => ({
  files,
  ignores,
  rules: {
    'no-restricted-imports': [
      'error',
      { patterns: Object.entries(forbid).map(([folder, message]) => ({ regex: climbsTo(folder), message })) },
    ],
    'no-restricted-syntax': [
      'error',
      ...Object.entries(forbid).map(([folder, message]) => ({
        selector: `ImportExpression[source.value=/${climbsTo(folder)}/]`,
        message,
      })),
    ],
  },
}));

export default tseslint.config(
  { ignores: ['node_modules/**', '.tools/**', 'dist/**', '.tmp/**', '.scratch/**', 'charts/**', 'eslint.config.js'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/explicit-module-boundary-types': 'error',
      'max-depth': ['error', 4],
      'max-params': ['error', 5],
      complexity: ['error', 15],
      // Lines fit 120 columns (the formatter wraps code; comments are wrapped by hand); a long string, template
      // or URL stays whole, since splitting a message makes it hard to find from a log line.
      'max-len': [
        'error',
        { code: 120, ignoreStrings: true, ignoreTemplateLiterals: true, ignoreRegExpLiterals: true, ignoreUrls: true },
      ],
      // Shipped code: a function fits on a screen. Tests are exempt (a describe block holds its cases).
      'max-lines-per-function': ['error', { max: 60, skipBlankLines: true, skipComments: true }],
    },
  },
  {
    files: ['**/*.test.ts', 'test/**', 'devkit/**', 'bench/**'],
    rules: {
      '@typescript-eslint/no-non-null-assertion': 'off',
      '@typescript-eslint/explicit-module-boundary-types': 'off',
      complexity: 'off',
      'max-lines-per-function': 'off',
    },
  },
  ...importBoundaryConfigs,
);
