#!/usr/bin/env node
// Writes an SPDX 2.3 SBOM (JSON) for every published package of the workspace — what `npm sbom
// --sbom-format spdx` writes for an installed package — from package-lock.json: the package,
// every package it depends on (transitively, at the versions the lockfile pins, with their
// licenses and integrity hashes) and a DEPENDS_ON relationship for each dependency edge.
//
//   node tools/sbom.mjs [--out DIR]   # default: <package>/dist/sbom.spdx.json (shipped in its tarball)
//
// A workspace package another depends on appears as itself (its version and license from its
// package.json); npm's registry is never asked.
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Where published packages live (nx.json release.projects). */
export const PACKAGE_DIRS = ['libs', 'plugins', 'apps'];

/** The workspace's published packages: `{ name, version, dir }` of every package.json not marked private. */
export function publishedPackages(root = ROOT) {
  return PACKAGE_DIRS.flatMap((d) => (existsSync(join(root, d)) ? readdirSync(join(root, d)).map((n) => join(d, n)) : []))
    .filter((dir) => existsSync(join(root, dir, 'package.json')))
    .map((dir) => ({ dir, pkg: JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8')) }))
    .filter(({ pkg }) => !pkg.private)
    .map(({ dir, pkg }) => ({ name: pkg.name, version: pkg.version, dir }));
}

const spdxId = (name, version) => `SPDXRef-Package-${name.replace(/^@/, '').replace(/[^A-Za-z0-9.-]/g, '.')}-${version}`;
const purl = (name, version) => `pkg:npm/${name.startsWith('@') ? `%40${name.slice(1)}` : name}@${version}`;

/**
 * The SPDX document of the workspace package in `dir`, its dependencies resolved through the
 * lockfile as npm installs them (a nested node_modules first, then each level up).
 */
export function sbomFor(dir, root = ROOT, lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'))) {
  const entries = lock.packages;
  /** Lockfile path → { name, version, license, integrity, resolved, deps }. */
  const describe = (path) => {
    const e = entries[path];
    if (!e) return undefined;
    if (e.link) return describe(e.resolved);
    const own = path === dir || !path.includes('node_modules/') ? JSON.parse(readFileSync(join(root, path, 'package.json'), 'utf8')) : undefined;
    const name = own?.name ?? e.name ?? path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
    return { path, name, version: own?.version ?? e.version, license: own?.license ?? e.license, integrity: e.integrity, resolved: e.resolved, deps: { ...(own?.dependencies ?? e.dependencies ?? {}), ...(e.optionalDependencies ?? {}) } };
  };
  /** Where `dep`, required from the package at `from`, is installed. */
  const locate = (from, dep) => {
    for (let base = from; ; ) {
      const candidate = `${base ? `${base}/` : ''}node_modules/${dep}`;
      if (entries[candidate]) return entries[candidate].link ? entries[candidate].resolved : candidate;
      if (!base) return undefined;
      const i = base.lastIndexOf('/node_modules/');
      base = i >= 0 ? base.slice(0, i) : '';
    }
  };
  const root_ = describe(dir);
  const packages = new Map();
  const relationships = [];
  const visit = (p) => {
    const id = spdxId(p.name, p.version);
    if (packages.has(id)) return id;
    packages.set(id, p);
    for (const dep of Object.keys(p.deps).sort()) {
      const at = locate(p.path, dep);
      const d = at && describe(at);
      if (!d) continue; // an optional dependency not installed on this platform
      relationships.push({ spdxElementId: id, relationshipType: 'DEPENDS_ON', relatedSpdxElement: visit(d) });
    }
    return id;
  };
  const rootId = visit(root_);
  return {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name: `${root_.name}@${root_.version}`,
    documentNamespace: `https://cilia.dev/spdxdocs/${root_.name.replace(/^@/, '')}-${root_.version}-${randomUUID()}`,
    creationInfo: { created: new Date().toISOString(), creators: ['Tool: cilia-tools-sbom'] },
    documentDescribes: [rootId],
    packages: [...packages].map(([id, p]) => ({
      name: p.name,
      SPDXID: id,
      versionInfo: p.version,
      downloadLocation: p.resolved && !p.resolved.startsWith('file:') && p.path.includes('node_modules/') ? p.resolved : 'NOASSERTION',
      filesAnalyzed: false,
      licenseDeclared: p.license ?? 'NOASSERTION',
      ...(p.integrity ? { checksums: [{ algorithm: p.integrity.split('-')[0].toUpperCase(), checksumValue: Buffer.from(p.integrity.split('-')[1], 'base64').toString('hex') }] } : {}),
      externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: purl(p.name, p.version) }],
    })),
    relationships: [{ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: rootId }, ...relationships],
  };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { out: { type: 'string' } } });
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));
  for (const { name, dir } of publishedPackages()) {
    const file = values.out ? join(resolve(values.out), `${name.replace(/^@/, '').replace('/', '__')}.spdx.json`) : join(ROOT, dir, 'dist', 'sbom.spdx.json');
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(sbomFor(dir, ROOT, lock), null, 2) + '\n');
    process.stderr.write(`sbom: ${name} -> ${file}\n`);
  }
}
