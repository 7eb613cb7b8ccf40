export { run } from './cli.js';
export { DEFAULT_SOCKET, resolveSocketPath } from './context.js';
export type { CliIo, SocketChoice, TextSink } from './context.js';
export { CliError, ExitCode, UsageError } from './errors.js';
export { OUTPUT_FORMATS, render } from './output.js';
export type { OutputFormat } from './output.js';
export { formatDuration, renderFields, renderTable } from './table.js';
