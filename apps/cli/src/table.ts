/** Placeholder for an empty cell, as kubectl prints it. */
export const NONE = '<none>';

// kubectl separates columns with three spaces; no borders, so the output greps and cuts well.
const GAP = '   ';

/**
 * Renders rows under an upper-case header with columns padded to their widest cell.
 * The last column is not padded, so no line carries trailing spaces.
 */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const all = [headers.map((h) => h.toUpperCase()), ...rows.map((r) => headers.map((_, i) => cell(r[i])))];
  const widths = headers.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  return all.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join(GAP)).join('\n') + '\n';
}

/**
 * Renders `Label:  value` lines with the values aligned. A multi-line value continues under
 * its first line, so a list (problems, say) reads as one block.
 */
export function renderFields(fields: readonly (readonly [string, string | readonly string[]])[]): string {
  const width = Math.max(...fields.map(([label]) => label.length + 1));
  const lines: string[] = [];
  for (const [label, value] of fields) {
    const values = typeof value === 'string' ? [value] : value.length ? value : [NONE];
    values.forEach((v, i) => lines.push(`${(i === 0 ? `${label}:` : '').padEnd(width)}  ${v}`.trimEnd()));
  }
  return lines.join('\n') + '\n';
}

/** A list cell: comma-separated, or {@link NONE} when empty. */
export function listCell(values: readonly string[] | undefined): string {
  return values && values.length ? values.join(',') : NONE;
}

/** A human duration like kubectl's AGE column: `45s`, `12m3s`, `5h7m`, `3d4h`. */
export function formatDuration(totalSeconds: number): string {
  const s = Math.max(0, Math.floor(totalSeconds));
  const days = Math.floor(s / 86_400);
  const hours = Math.floor((s % 86_400) / 3_600);
  const minutes = Math.floor((s % 3_600) / 60);
  const seconds = s % 60;
  if (days > 0) return hours ? `${days}d${hours}h` : `${days}d`;
  if (hours > 0) return minutes ? `${hours}h${minutes}m` : `${hours}h`;
  if (minutes > 0) return seconds ? `${minutes}m${seconds}s` : `${minutes}m`;
  return `${seconds}s`;
}

function cell(value: string | undefined): string {
  // A newline inside a cell would break the column layout.
  return value === undefined || value === '' ? NONE : value.replace(/\s*\n\s*/g, ' ');
}
