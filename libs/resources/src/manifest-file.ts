import { LineCounter, parseAllDocuments, type Document } from 'yaml';
import { describeRef, refKey } from './refs.js';
import { validateObject, type ValidatedObject } from './schema.js';

/** Why a manifest file was refused. `path` is a field path inside the file; `line` is 1-based. */
export interface FileProblem {
  readonly path: string;
  readonly reason: string;
  readonly line?: number;
}

/** One object of a manifest file, with the field path of its document. */
export interface ParsedObject extends ValidatedObject {
  /** `""` in a single-document file, `[2]` for the third document of a multi-document one. */
  readonly documentPath: string;
}

/**
 * Parses a manifest file: one or more YAML documents (`---`), each a Kubernetes-shaped
 * object; empty documents are skipped. The whole file is refused at its first problem, so a
 * half-valid file never applies in part.
 */
export function parseManifestFile(text: string): { readonly objects: readonly ParsedObject[] } | { readonly problem: FileProblem } {
  const lines = new LineCounter();
  const documents = parseAllDocuments(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
  if (!Array.isArray(documents)) return { objects: [] };
  const multi = documents.length > 1;
  const objects: ParsedObject[] = [];
  const seen = new Map<string, string>();
  for (const [index, document] of documents.entries()) {
    const documentPath = multi ? `[${index}]` : '';
    const syntax = document.errors[0];
    if (syntax) {
      const line = syntax.linePos?.[0].line;
      return { problem: { path: documentPath, reason: `YAML syntax: ${firstLine(syntax.message)}`, ...(line ? { line } : {}) } };
    }
    let value: unknown;
    try {
      value = document.toJS({ maxAliasCount: 100 });
    } catch (err) {
      // Parsed, yet not a value: an alias to no anchor, or aliases expanding past the limit.
      return { problem: { path: documentPath, reason: `YAML: ${firstLine((err as Error).message)}` } };
    }
    if (value === null || value === undefined) continue; // an empty or comment-only document
    const result = validateObject(value);
    if ('problems' in result) {
      const problem = result.problems[0]!;
      const path = joinPath(documentPath, problem.path);
      const line = lineOf(document, lines, problem.segments);
      return { problem: { path, reason: problem.reason, ...(line ? { line } : {}) } };
    }
    const key = refKey(result.ref);
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      const line = lineOf(document, lines, ['metadata', 'name']);
      return {
        problem: {
          path: joinPath(documentPath, 'metadata.name'),
          reason: `${describeRef(result.ref)} is defined twice in this file (also ${earlier || 'above'})`,
          ...(line ? { line } : {}),
        },
      };
    }
    seen.set(key, documentPath);
    objects.push({ ...result, documentPath });
  }
  return { objects };
}

/** `[2]` + `metadata.name` → `[2].metadata.name`. */
export function joinPath(documentPath: string, fieldPath: string): string {
  if (documentPath === '') return fieldPath;
  if (fieldPath === '') return documentPath;
  return fieldPath.startsWith('[') ? `${documentPath}${fieldPath}` : `${documentPath}.${fieldPath}`;
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.trim();
}

/** The line of the deepest node on `path` that exists (a missing field points at its parent). */
function lineOf(document: Document, lines: LineCounter, parts: readonly PropertyKey[]): number | undefined {
  for (let n = parts.length; n >= 0; n--) {
    const node = n === 0 ? document.contents : document.getIn(parts.slice(0, n), true);
    const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
    if (range) return lines.linePos(range[0]).line;
  }
  return undefined;
}

