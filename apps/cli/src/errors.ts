/** Exit codes of `cilia`, as documented in the README. */
export const ExitCode = {
  Ok: 0,
  /** The agent could not be reached or answered with an error. */
  Failure: 1,
  /** The command line itself was wrong. */
  Usage: 2,
} as const;

/** An error that ends the command with one `cilia: <message>` line and the given exit code. */
export class CliError extends Error {
  readonly exitCode: number;

  constructor(message: string, exitCode: number = ExitCode.Failure) {
    super(message);
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

/** Ends the command with `exitCode` and no further output: the command has said what it had to (`status --brief`). */
export class QuietExit extends CliError {
  constructor(exitCode: number) {
    super('', exitCode);
    this.name = 'QuietExit';
  }
}

/** A command-line mistake (bad flag value, unknown command): exit code 2. */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, ExitCode.Usage);
    this.name = 'UsageError';
  }
}

/** Collapses a message to a single line so the error contract (one line on stderr) holds. */
export function oneLine(message: string): string {
  return message.replace(/\s*\n\s*/g, ' ').trim();
}
