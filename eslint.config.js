// Lint: typescript-eslint's recommended rules plus the domain boundary rule:
// a domain folder imports another only through that folder's index.ts.
import tseslint from 'typescript-eslint';

const domains = ['http', 'registry', 'serving', 'quality', 'monitoring', 'slo', 'alerting', 'rollouts', 'features', 'lifecycle', 'security', 'telemetry', 'storage', 'cli'];

const boundary = (domain) => ({
  files: [`src/${domain}/**/*.ts`],
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: domains
          .filter((d) => d !== domain)
          .map((d) => ({
            regex: `^(\\.\\./)+(${d})/(?!index\\.ts$).+`,
            message: `import the ${d} domain through ${d}/index.ts only (domains import each other through their index.ts)`,
          })),
      },
    ],
  },
});

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.warden/', 'coverage/', 'web/dist/'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
    },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
  ...domains.map(boundary),
);
