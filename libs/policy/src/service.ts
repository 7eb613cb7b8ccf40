import type { DeletedPolicy, PolicyDeleteSelector, PolicyTraceResponse } from '@cilia/api-client';
import type { Labels, Logger, PolicyRepository, PolicyRevision, ResourceEvent, ResourceRef, ResourceSource, Unsubscribe } from '@cilia/core';
import type { PolicyFieldError } from './model.js';
import { parsePolicyDocument } from './parse/index.js';
import { ruleKey, type PolicyStateFile } from './store.js';

/** What `POST /v1/policy/trace` asks: would a packet from `src` to `dst` on `dport`/`protocol` pass? */
export interface PolicyTraceQuery {
  readonly src: Labels;
  readonly dst: Labels;
  readonly dport: number;
  readonly protocol: string;
}

/** A repository that can also explain a verdict (the engine). */
export interface TraceablePolicyRepository extends PolicyRepository {
  trace(query: PolicyTraceQuery): PolicyTraceResponse;
}

/** What a delete selects: one policy by name (namespace and kind narrowing it), or all. */
export type PolicySelector = PolicyDeleteSelector;

/** One policy (all its rules) that a delete removed. */
export type { DeletedPolicy };

/** The policy kinds a ResourceSource delivers. */
export const POLICY_KINDS = ['NetworkPolicy', 'CiliumNetworkPolicy', 'CiliumClusterwideNetworkPolicy'] as const;

/** A policy refused as a whole; `errors` name the fields. Compared by name: the class may come from another copy of the package. */
function validationErrors(err: unknown): readonly PolicyFieldError[] | undefined {
  return (err as Error)?.name === 'PolicyValidationError' ? ((err as { errors?: readonly PolicyFieldError[] }).errors ?? []) : undefined;
}

/** `path: reason` of each error, the `documents[0].` prefix of a one-document import dropped. */
function describeFieldErrors(errors: readonly PolicyFieldError[]): string {
  return errors.map((e) => {
    const path = e.path.replace(/^documents\[0\]\.?/, '');
    return path ? `${path}: ${e.reason}` : e.reason;
  }).join('; ');
}

function refName(ref: ResourceRef): string {
  return ref.namespace ? `${ref.kind} ${ref.namespace}/${ref.name}` : `${ref.kind} ${ref.name}`;
}

export interface PolicyServiceOptions {
  readonly repository: TraceablePolicyRepository;
  /** Where API imports persist; without one they live as long as the process. */
  readonly store?: PolicyStateFile;
  readonly logger: Logger;
}

/**
 * The policy repository as the agent runs it: API imports persisted to the state file, policies
 * from the ResourceSource kept in step with it, and one queue through which every change goes,
 * so a manifest update and an API import never interleave and revisions follow arrival order.
 */
export class PolicyService {
  readonly repository: TraceablePolicyRepository;
  readonly #store: PolicyStateFile | undefined;
  readonly #log: Logger;
  #queue: Promise<unknown> = Promise.resolve();
  /** Problems that last until restart (unreadable state, stored policies refused). */
  readonly #startProblems: string[] = [];
  /** Manifest policies refused, by `kind/namespace/name`, until a valid version or a delete. */
  readonly #refused = new Map<string, string>();
  #persistProblem: string | undefined;
  #unsubscribe?: Unsubscribe;

  constructor(options: PolicyServiceOptions) {
    this.repository = options.repository;
    this.#store = options.store;
    this.#log = options.logger;
  }

  /**
   * Imports the persisted API policies. An unreadable file, or a stored policy this version
   * refuses, is logged and reported in `problems()`; the agent starts without it.
   */
  async restore(): Promise<void> {
    if (!this.#store) return;
    const { documents, problem } = await this.#store.load();
    if (problem) {
      this.#log.error({ problem }, 'cannot read the persisted policies; starting without them');
      this.#startProblems.push(`persisted policies not restored: ${problem}`);
    }
    if (documents.length === 0) return;
    // Every stored policy still valid comes back in one import; each refused one is imported
    // alone for its errors, so it counts once among the import errors (not also as the batch).
    const valid = documents.filter((doc) => parsePolicyDocument(doc).ok);
    if (valid.length > 0) await this.repository.import(valid);
    const imported = new Set(valid);
    for (const doc of documents.filter((d) => !imported.has(d))) {
      try {
        await this.repository.import([doc]);
      } catch (single) {
        const errors = validationErrors(single);
        if (!errors) throw single;
        const name = ruleKeyOf(doc);
        this.#log.error({ policy: name, errors }, 'a persisted policy is refused; it is not enforced');
        this.#startProblems.push(`persisted policy ${name} refused: ${describeFieldErrors(errors)}; it is not enforced`);
      }
    }
    this.#log.info({ policies: documents.length, revision: this.repository.revision() }, 'persisted policies restored');
  }

  /** Validates and imports documents as one change, then persists them. */
  import(documents: readonly unknown[]): Promise<PolicyRevision> {
    return this.#serial(async () => {
      const revision = await this.repository.import(documents);
      await this.#persist(() => this.#store?.put(documents));
      return revision;
    });
  }

  /**
   * Deletes what `selector` names. Returns undefined when nothing matched (and nothing
   * changed), else the new revision and the policies gone.
   */
  delete(selector: PolicySelector): Promise<{ revision: PolicyRevision; deleted: DeletedPolicy[] } | undefined> {
    return this.#serial(async () => {
      const before = new Map(this.repository.rules().map((r) => [ruleKey(r), r]));
      if (!matchesAny([...before.values()], selector)) return undefined;
      const revisionBefore = this.repository.revision();
      let revision: PolicyRevision;
      try {
        revision = await this.repository.delete(selector);
      } catch (err) {
        // The repository's own matching found nothing: the same answer as no match at all.
        if (this.repository.revision() === revisionBefore) {
          this.#log.debug({ err, selector }, 'delete matched nothing');
          return undefined;
        }
        throw err;
      }
      const after = new Set(this.repository.rules().map((r) => ruleKey(r)));
      const gone = [...before].filter(([key]) => !after.has(key));
      const goneKeys = new Set(gone.map(([key]) => key));
      await this.#persist(() => this.#store?.retain((key) => !goneKeys.has(key)));
      return { revision, deleted: gone.map(([, r]) => ({ kind: r.kind, ...(r.namespace ? { namespace: r.namespace } : {}), name: r.name })) };
    });
  }

  /**
   * Follows the source's policies and resolves once its initial listing is imported, or after
   * `syncTimeoutMs` with a warning (the rest then arrives as it comes).
   */
  async follow(source: ResourceSource, syncTimeoutMs = 5000): Promise<void> {
    let synced!: () => void;
    const listed = new Promise<void>((resolve) => (synced = resolve));
    this.#unsubscribe = source.subscribe(POLICY_KINDS, (event) => this.#onResource(event, source.name, synced));
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), syncTimeoutMs)));
    const late = await Promise.race([listed.then(() => this.#serial(async () => false)), timedOut]);
    clearTimeout(timer);
    if (late) this.#log.warn({ source: source.name, timeoutMs: syncTimeoutMs }, 'policies of the resource source not listed in time; endpoints may start with part of their policy');
  }

  /** Stops following the source. */
  close(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }

  /** What is wrong now, one line each, for `cilia status`. */
  problems(): string[] {
    return [...this.#startProblems, ...(this.#persistProblem ? [this.#persistProblem] : []), ...this.#refused.values()];
  }

  #onResource(event: ResourceEvent, origin: string, synced: () => void): void {
    switch (event.type) {
      case 'upsert': {
        const { ref, object } = event;
        const key = ruleKey(ref);
        void this.#serial(async () => {
          try {
            const revision = await this.repository.import([object]);
            this.#refused.delete(key);
            this.#log.info({ policy: key, revision }, 'policy from the resource source imported');
          } catch (err) {
            const errors = validationErrors(err);
            if (!errors) throw err;
            const reason = describeFieldErrors(errors);
            this.#log.error({ policy: key, source: origin, errors }, 'policy from the resource source refused; nothing changed because of it');
            this.#refused.set(key, `${refName(ref)} from ${origin} refused: ${reason}; nothing changed because of it`);
          }
        }).catch((err: unknown) => this.#log.error({ err, policy: key }, 'importing a policy from the resource source failed'));
        return;
      }
      case 'delete': {
        const { ref } = event;
        const key = ruleKey(ref);
        void this.#serial(async () => {
          this.#refused.delete(key);
          const selector = { name: ref.name, kind: ref.kind, ...(ref.namespace ? { namespace: ref.namespace } : {}) };
          // A policy that was refused from the start was never stored: nothing to delete.
          if (!matchesAny(this.repository.rules(), selector)) return;
          const revision = await this.repository.delete(selector);
          this.#log.info({ policy: key, revision }, 'policy deleted by the resource source');
        }).catch((err: unknown) => this.#log.error({ err, policy: key }, 'deleting a policy of the resource source failed'));
        return;
      }
      case 'synced':
        synced();
        return;
      case 'invalid':
        // The source reports refused files itself; nothing reached the repository.
        return;
    }
  }

  /** A failed write does not undo the change (it is in force); it is reported until a write succeeds. */
  async #persist(write: () => Promise<void> | undefined): Promise<void> {
    try {
      await write();
      this.#persistProblem = undefined;
    } catch (err) {
      this.#log.error({ err, file: this.#store?.path }, 'cannot persist the policies imported through the API');
      this.#persistProblem = `policies imported through the API are in force but not persisted (lost on restart): ${(err as Error).message}`;
    }
  }

  #serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task, task);
    this.#queue = run.catch(() => undefined);
    return run;
  }
}

function ruleKeyOf(doc: unknown): string {
  const d = doc as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
  return ruleKey({ kind: String(d?.kind), name: String(d?.metadata?.name), ...(typeof d?.metadata?.namespace === 'string' ? { namespace: d.metadata.namespace } : {}) });
}

/** Whether `selector` names at least one of `rules`: name equal, namespace and kind equal when given. */
export function matchesAny(rules: readonly { kind: string; namespace?: string; name: string }[], selector: PolicySelector): boolean {
  if ('all' in selector) return rules.length > 0;
  return rules.some((r) => r.name === selector.name && (selector.namespace === undefined || (r.namespace ?? '') === selector.namespace) && (selector.kind === undefined || r.kind === selector.kind));
}
