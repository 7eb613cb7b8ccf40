import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AGENT_VERSION, describeApi, prepareAgent } from '../agent.js';
import { presetDirectory } from '../config/document.js';
import { apiReferenceMarkdown, openApiDocument } from './openapi.js';

const standalone = () => prepareAgent(join(presetDirectory(), 'standalone.yaml'));

describe('the API reference', () => {
  it('docs/api-reference.md is the generated reference (regenerate: npm run api-reference -w @cilia/agent)', async () => {
    const committed = readFileSync(new URL('../../../../docs/api-reference.md', import.meta.url), 'utf8');
    expect(committed).toBe(apiReferenceMarkdown(describeApi(await standalone())));
  });

  it("describes every route of the embedded defaults as OpenAPI 3.1, from the routes' schemas", async () => {
    const routes = describeApi(await standalone());
    const doc = openApiDocument(routes, AGENT_VERSION) as { openapi: string; paths: Record<string, Record<string, Record<string, unknown>>> };
    expect(doc.openapi).toBe('3.1.0');
    for (const r of routes) expect(doc.paths[r.path.replace(/:(\w+)/g, '{$1}')]?.[r.method.toLowerCase()], `${r.method} ${r.path}`).toBeDefined();
    expect(doc.paths['/v1/endpoints/{id}']!.get!.parameters).toEqual([{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }]);
    const importBody = (doc.paths['/v1/policy']!.post!.requestBody as { content: Record<string, { schema: { required: string[] } }> }).content['application/json']!.schema;
    expect(importBody.required).toEqual(['documents']);
    const del = doc.paths['/v1/endpoints']!.delete!.parameters as { name: string; required: boolean }[];
    expect(del.find((p) => p.name === 'containerId')?.required).toBe(true);
    expect(routes.filter((r) => !r.summary)).toEqual([]);
  });
});
