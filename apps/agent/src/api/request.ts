import type { ApiRequestError, ApiRoute, z } from '@cilia/core';

/** A request part that does not fit its route's schema: answered 400 naming the field. */
export interface RequestProblem {
  readonly error: string;
  readonly path: string;
}

/**
 * The route's view of a request: `query` and `body` parsed by its schemas. Without a query
 * schema every key must come once (a repeated key would reach the handler as an array).
 */
export function parseRequest(route: Pick<ApiRoute, 'query' | 'body'>, query: unknown, body: unknown): { query: unknown; body: unknown } | RequestProblem {
  const q = (query ?? {}) as Record<string, unknown>;
  let parsedQuery: unknown = q;
  if (route.query) {
    const r = route.query.safeParse(q);
    if (!r.success) return problem(r.error, 'query');
    parsedQuery = r.data;
  } else {
    const repeated = Object.entries(q).find(([, v]) => Array.isArray(v));
    if (repeated) return { error: 'given more than once', path: repeated[0] };
  }
  let parsedBody: unknown = body;
  if (route.body) {
    const r = route.body.safeParse(body ?? undefined);
    if (!r.success) return problem(r.error, 'body');
    parsedBody = r.data;
  }
  return { query: parsedQuery, body: parsedBody };
}

/** The first issue, its path as `documents[0].metadata.name` (the part's name when it is the whole). */
function problem(error: z.ZodError, part: 'query' | 'body'): RequestProblem {
  const issue = error.issues[0]!;
  const path = issue.path.reduce<string>((acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)), '');
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more problem${error.issues.length > 2 ? 's' : ''})` : '';
  return { error: `${issue.message}${more}`, path: path || part };
}

/** Whether `err` is a route's refusal (compared by name: a plugin may carry its own copy of core). */
export function isRequestError(err: unknown): err is ApiRequestError {
  return (err as Error)?.name === 'ApiRequestError';
}
