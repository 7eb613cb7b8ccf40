import { Option } from 'commander';
import { stringify } from 'yaml';

/** The formats every command accepts with `-o, --output`. */
export const OUTPUT_FORMATS = ['table', 'json', 'yaml'] as const;

/** One of {@link OUTPUT_FORMATS}. */
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** The `-o, --output` option, validated by commander so a bad value is a usage error (exit 2). */
export function outputOption(): Option {
  return new Option('-o, --output <format>', 'output format').choices(OUTPUT_FORMATS).default('table');
}

/**
 * Renders an API answer: `json` is the answer itself, pretty-printed with two spaces; `yaml`
 * is the same data as YAML; `table` is whatever the command's table renderer makes of it.
 */
export function render<T>(format: OutputFormat, data: T, table: (data: T) => string): string {
  switch (format) {
    case 'json':
      return JSON.stringify(data, null, 2) + '\n';
    case 'yaml':
      return toYaml(data);
    case 'table':
      return table(data);
  }
}

/** YAML for people and scripts alike: no line folding, so long values stay on one line. */
export function toYaml(data: unknown): string {
  return stringify(data, { lineWidth: 0 });
}
