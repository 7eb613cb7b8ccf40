import nx from '@nx/eslint-plugin';
import tseslint from 'typescript-eslint';

// Dependencies point one way: apps → plugins → libs → core. A plugin never imports another
// plugin; it asks the container for an interface from core.
const boundaries = [
  { sourceTag: 'type:core', notDependOnLibsWithTags: ['type:lib', 'type:plugin', 'type:app', 'type:tool'] },
  { sourceTag: 'type:lib', onlyDependOnLibsWithTags: ['type:core', 'type:lib'] },
  { sourceTag: 'type:plugin', onlyDependOnLibsWithTags: ['type:core', 'type:lib'] },
  { sourceTag: 'type:app', onlyDependOnLibsWithTags: ['type:core', 'type:lib', 'type:plugin'] },
  { sourceTag: 'type:tool', onlyDependOnLibsWithTags: ['type:core', 'type:lib'] },
];

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/build/**', '.nx/**', 'tools/generators/**/files/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts', '**/*.mts', '**/*.js', '**/*.mjs'],
    plugins: { '@nx': nx },
    rules: {
      '@nx/enforce-module-boundaries': [
        'error',
        { enforceBuildableLibDependency: false, allow: [], depConstraints: boundaries },
      ],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
);
