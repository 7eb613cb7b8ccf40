import { describe, expect, it } from 'vitest';
import { LifecycleRunner, StartError } from './lifecycle.js';

function recorder() {
  const events: string[] = [];
  const hook = (name: string, opts: { failStart?: boolean; stop?: (signal: AbortSignal) => Promise<void> | void } = {}) => ({
    name,
    start: () => {
      events.push(`start ${name}`);
      if (opts.failStart) throw new Error(`${name} broke`);
    },
    stop: (signal: AbortSignal) => {
      events.push(`stop ${name}`);
      return opts.stop?.(signal);
    },
  });
  return { events, hook };
}

describe('LifecycleRunner', () => {
  it('starts in order and stops in reverse', async () => {
    const { events, hook } = recorder();
    const lc = new LifecycleRunner();
    ['a', 'b', 'c'].forEach((n) => lc.append(hook(n)));
    await lc.start();
    expect(lc.states().map((s) => s.state)).toEqual(['started', 'started', 'started']);
    const report = await lc.stop(1000);
    expect(report).toEqual({ timedOut: [], failed: [] });
    expect(events).toEqual(['start a', 'start b', 'start c', 'stop c', 'stop b', 'stop a']);
  });

  it('stops what started, in reverse, when a start fails, and never starts the rest', async () => {
    const { events, hook } = recorder();
    const lc = new LifecycleRunner();
    lc.append(hook('a'));
    lc.append(hook('b'));
    lc.append(hook('c', { failStart: true }));
    lc.append(hook('d'));
    const err = await lc.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StartError);
    expect((err as StartError).hook).toBe('c');
    expect((err as Error).message).toBe('c failed to start: c broke');
    expect(events).toEqual(['start a', 'start b', 'start c', 'stop b', 'stop a']);
    expect(lc.states().map((s) => `${s.name}:${s.state}`)).toEqual(['a:stopped', 'b:stopped', 'c:failed', 'd:pending']);
  });

  it('gives up on a stop that outlives the budget, aborts its signal, and still stops the others', async () => {
    const { events, hook } = recorder();
    let aborted = false;
    const lc = new LifecycleRunner();
    lc.append(hook('a'));
    lc.append(
      hook('slow', {
        stop: (signal) =>
          new Promise<void>(() => {
            signal.addEventListener('abort', () => (aborted = true));
          }),
      }),
    );
    lc.append(hook('c'));
    await lc.start();
    const t0 = Date.now();
    const report = await lc.stop(100);
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(report.timedOut).toEqual(['slow']);
    expect(aborted).toBe(true);
    expect(events).toEqual(['start a', 'start slow', 'start c', 'stop c', 'stop slow', 'stop a']);
  });

  it('reports a stop that throws and carries on', async () => {
    const { hook } = recorder();
    const lc = new LifecycleRunner();
    lc.append(hook('a'));
    lc.append(hook('b', { stop: () => Promise.reject(new Error('stuck')) }));
    await lc.start();
    expect(await lc.stop(1000)).toEqual({ timedOut: [], failed: [{ name: 'b', error: 'stuck' }] });
    expect(lc.states().map((s) => s.state)).toEqual(['stopped', 'failed']);
  });

  it('starts hooks appended while starting', async () => {
    const { events, hook } = recorder();
    const lc = new LifecycleRunner();
    lc.append({ name: 'parent', start: () => lc.append(hook('child')) });
    await lc.start();
    expect(events).toEqual(['start child']);
  });
});
