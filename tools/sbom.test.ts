// The SPDX SBOM of every published package: a valid SPDX 2.3 document describing the package,
// listing each of its direct dependencies at the version the lockfile pins, with a DEPENDS_ON
// relationship from the package to each.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
// @ts-expect-error -- a plain ESM script of the workspace tools, without declarations
import { publishedPackages } from './sbom.mjs';

const ROOT = join(import.meta.dirname, '..');

interface SpdxPackage {
  name: string;
  SPDXID: string;
  versionInfo: string;
  downloadLocation: string;
  licenseDeclared: string;
  externalRefs: { referenceType: string; referenceLocator: string }[];
}
interface SpdxDocument {
  spdxVersion: string;
  dataLicense: string;
  SPDXID: string;
  name: string;
  documentNamespace: string;
  creationInfo: { created: string; creators: string[] };
  documentDescribes: string[];
  packages: SpdxPackage[];
  relationships: { spdxElementId: string; relationshipType: string; relatedSpdxElement: string }[];
}

describe('tools/sbom.mjs', () => {
  const out = mkdtempSync(join(tmpdir(), 'cilia-sbom-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it("writes each published package's SPDX document with its direct dependencies listed", () => {
    const r = spawnSync(process.execPath, [join(ROOT, 'tools/sbom.mjs'), '--out', out], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version?: string }> };
    const packages = publishedPackages() as { name: string; version: string; dir: string }[];
    expect(packages.map((p) => p.name)).toEqual(expect.arrayContaining(['@cilia/core', '@cilia/agent', '@cilia/cli', '@cilia/cni', '@cilia/plugin-overlay-vxlan']));
    for (const { name, version, dir } of packages) {
      const doc = JSON.parse(readFileSync(join(out, `${name.replace(/^@/, '').replace('/', '__')}.spdx.json`), 'utf8')) as SpdxDocument;
      expect(doc.spdxVersion, name).toBe('SPDX-2.3');
      expect(doc.dataLicense).toBe('CC0-1.0');
      expect(doc.SPDXID).toBe('SPDXRef-DOCUMENT');
      expect(doc.name).toBe(`${name}@${version}`);
      expect(doc.documentNamespace).toMatch(/^https:\/\/\S+$/);
      expect(Date.parse(doc.creationInfo.created)).not.toBeNaN();
      expect(doc.creationInfo.creators[0]).toMatch(/^Tool: /);
      const ids = new Set(doc.packages.map((p) => p.SPDXID));
      expect(ids.size, `${name}: SPDXIDs are unique`).toBe(doc.packages.length);
      for (const p of doc.packages) {
        expect(p.SPDXID).toMatch(/^SPDXRef-[A-Za-z0-9.-]+$/);
        expect(p.downloadLocation).toBeTruthy();
        expect(p.externalRefs[0]?.referenceType).toBe('purl');
      }
      const [described] = doc.documentDescribes;
      expect(doc.packages.find((p) => p.SPDXID === described)).toMatchObject({ name, versionInfo: version });
      expect(doc.relationships).toContainEqual({ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: described });
      // Every direct dependency is there, at the lockfile's version (a workspace package: its own), depended on by the package.
      const manifest = JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
      for (const dep of Object.keys(manifest.dependencies ?? {})) {
        const pinned = lock.packages[`${dir}/node_modules/${dep}`]?.version ?? lock.packages[`node_modules/${dep}`]?.version;
        const linked = (lock.packages[`node_modules/${dep}`] as { resolved?: string; link?: boolean } | undefined)?.link;
        const expected = linked ? (JSON.parse(readFileSync(join(ROOT, (lock.packages[`node_modules/${dep}`] as { resolved: string }).resolved, 'package.json'), 'utf8')) as { version: string }).version : pinned;
        const listed = doc.packages.find((p) => p.name === dep && p.versionInfo === expected);
        expect(listed, `${name} → ${dep}@${expected}`).toBeDefined();
        expect(doc.relationships).toContainEqual({ spdxElementId: described, relationshipType: 'DEPENDS_ON', relatedSpdxElement: listed!.SPDXID });
      }
    }
  });
});
