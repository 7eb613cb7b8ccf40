/**
 * @cilia/datapath/testing: the base objects compiled and loaded for BPF unit tests the way the
 * agent loads them (shared pin root, resume and main programs in the slot table), each test
 * file with its own pin root so the pinned maps start empty and are removed afterwards; a
 * plugin's tests load their object against the same maps. Test-only; needs the workspace and root.
 */
import { join, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { BpfObject, type ConstantValue } from '@cilia/bpf';
import { compileBpf, makePinRoot, removePinRoot, workspaceRoot } from '@cilia/bpf/testing';
import { slotIndex, BASE_PROGRAMS } from '../maps/index.js';

/** The repo's bpf/ (base objects) and bpf/tests/ (test objects such as slot_filler.c). */
export const BASE_SRC = pathToFileURL(join(workspaceRoot(), 'bpf') + sep);
export const TEST_SRC = pathToFileURL(join(workspaceRoot(), 'bpf', 'tests') + sep);

const compiled = new Map<string, string>();

/**
 * Compiles bpf/<name>.c (or bpf/tests/<name>.c with `test: true`) once per test file and
 * returns the object's path.
 */
export function objectPath(name: string, test = false): string {
  const key = `${test ? 'tests/' : ''}${name}`;
  let path = compiled.get(key);
  if (!path) {
    path = compileBpf(name, { srcDir: test ? TEST_SRC : BASE_SRC });
    compiled.set(key, path);
  }
  return path;
}

/** Base objects loaded the way the agent loads them: shared pin root, resume programs installed. */
export interface Datapath {
  readonly pinRoot: string;
  readonly lxc: BpfObject;
  readonly host: BpfObject;
  /** Opens and loads another object of bpf/tests (or bpf/ with `test` false) against the same pinned maps. */
  loadMore(name: string, test?: boolean): BpfObject;
  /** Opens and loads the object at `path` (a plugin's) against the same pinned maps. */
  load(path: string, constants?: Record<string, ConstantValue>): BpfObject;
  /** Closes the objects (as an agent that exits), leaving pins, slots and attachments. */
  close(): void;
  /** Closes the objects and removes the pin root with everything pinned below it. */
  dispose(): void;
}

/**
 * Loads lxc.o and host.o against `pinRoot` (a fresh one by default; an existing one to load
 * a second generation that reuses the pinned maps, as a restarted agent does).
 */
export function loadDatapath(
  hostConstants: Record<string, ConstantValue> = {},
  pinRoot: string = makePinRoot('datapath'),
  lxcConstants: Record<string, ConstantValue> = {},
): Datapath {
  const objects: BpfObject[] = [];
  const load = (path: string, constants: Record<string, ConstantValue> = {}): BpfObject => {
    const obj = BpfObject.open(path, { pinRoot, constants });
    objects.push(obj);
    obj.load();
    return obj;
  };
  try {
    const lxc = load(objectPath('lxc'), lxcConstants);
    const host = load(objectPath('host'), hostConstants);
    const slots = lxc.programArray('cilia_tc_slots');
    for (const [name, obj] of [['lxc', lxc], ['host', host]] as const) {
      for (const [ap, spec] of Object.entries(BASE_PROGRAMS[name])) {
        slots.set(slotIndex(ap as keyof (typeof BASE_PROGRAMS)[typeof name], 'resume'), obj.program(spec.resume));
        if ('main' in spec) slots.set(slotIndex(ap as keyof (typeof BASE_PROGRAMS)[typeof name], 'main'), obj.program(spec.main));
      }
    }
    return {
      pinRoot,
      lxc,
      host,
      loadMore: (name, test = true) => load(objectPath(name, test)),
      load,
      close() {
        for (const obj of objects) obj.close();
      },
      dispose() {
        for (const obj of objects) obj.close();
        removePinRoot(pinRoot);
      },
    };
  } catch (err) {
    for (const obj of objects) obj.close();
    removePinRoot(pinRoot);
    throw err;
  }
}
