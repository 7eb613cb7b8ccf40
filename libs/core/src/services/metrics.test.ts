import { describe, expect, it } from 'vitest';
import { HistogramRecorder } from './metrics.js';

describe('HistogramRecorder', () => {
  it('keeps cumulative buckets; an observation above every bound counts only in +Inf (count) and sum', () => {
    const h = new HistogramRecorder([1, 5, 10]);
    for (const v of [0.5, 1, 3, 7, 100]) h.observe(v);
    expect(h.sample({ kind: 'x' })).toEqual({ labels: { kind: 'x' }, buckets: [[1, 2], [5, 3], [10, 4]], sum: 111.5, count: 5 });
    expect(h.count).toBe(5);
  });

  it('ignores NaN and starts empty', () => {
    const h = new HistogramRecorder([1]);
    expect(h.sample()).toEqual({ buckets: [[1, 0]], sum: 0, count: 0 });
    h.observe(Number.NaN);
    expect(h.count).toBe(0);
  });

  it('refuses bounds that are not finite or not strictly ascending, naming the index', () => {
    expect(() => new HistogramRecorder([1, 1])).toThrow('bounds[1]: 1 does not exceed bounds[0] (1)');
    expect(() => new HistogramRecorder([1, Infinity])).toThrow('bounds[1]: Infinity is not a finite number');
  });
});
