import { readdir, realpath, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

/** What a directory scan found. */
export interface DirectoryListing {
  /** False when the directory itself does not exist (yet). */
  readonly exists: boolean;
  /** Manifest files by path relative to the root (`/`-separated), with a change key and size. */
  readonly files: ReadonlyMap<string, { readonly absolute: string; readonly key: string; readonly size: number }>;
  /** Symlinked manifest files that lead outside the directory (not read): file → where they lead. */
  readonly outside: ReadonlyMap<string, string>;
  /** Absolute paths of the root and every subdirectory scanned (to watch). */
  readonly directories: readonly string[];
}

const MANIFEST = /\.ya?ml$/;

/**
 * Lists `*.yaml` / `*.yml` files under `root`, recursively. Hidden entries (a leading `.`:
 * editor swap files, the `..data` links of a mounted ConfigMap) are skipped; a symlink to a
 * file inside the directory counts as that file (a mounted ConfigMap's `name.yaml → ..data/…`),
 * one leading out of it is listed in `outside` and never read (the directory is the boundary of
 * what the agent takes as configuration), a symlink to a directory is not followed (no loops).
 * The change key (inode, size, mtime) tells a rewritten or replaced file from an untouched one.
 */
export async function scanManifestDirectory(root: string): Promise<DirectoryListing> {
  const files = new Map<string, { absolute: string; key: string; size: number }>();
  const outside = new Map<string, string>();
  const directories: string[] = [];
  let realRoot: string | undefined;
  const walk = async (dir: string): Promise<boolean> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isGone(err)) return false;
      throw err;
    }
    directories.push(dir);
    for (const entry of entries) {
      if (entry.name.startsWith('.')) continue;
      const absolute = join(dir, entry.name);
      if (entry.isDirectory()) {
        await walk(absolute);
        continue;
      }
      if (!MANIFEST.test(entry.name) || !(entry.isFile() || entry.isSymbolicLink())) continue;
      try {
        const s = await stat(absolute);
        if (!s.isFile()) continue;
        const file = relative(root, absolute).split(sep).join('/');
        if (entry.isSymbolicLink()) {
          realRoot ??= await realpath(root);
          const target = await realpath(absolute);
          if (!isWithin(realRoot, target)) {
            outside.set(file, target);
            continue;
          }
        }
        files.set(file, { absolute, key: `${s.ino}:${s.size}:${s.mtimeMs}`, size: s.size });
      } catch (err) {
        if (!isGone(err)) throw err;
      }
    }
    return true;
  };
  const exists = await walk(root);
  return { exists, files, outside, directories };
}

function isWithin(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !rel.startsWith(sep);
}

function isGone(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
