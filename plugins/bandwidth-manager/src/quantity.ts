/**
 * Kubernetes quantities (`resource.Quantity`'s grammar): a decimal number with a binary SI
 * suffix (Ki … Ei), a decimal SI suffix (m, k, M, G, T, P, E) or a decimal exponent (e3, E-2).
 * `10M` is 10 000 000; `1.5Gi` is 1 610 612 736.
 */
const QUANTITY = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E))?$/;

const SUFFIX: Readonly<Record<string, number>> = {
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** The value of a quantity, or undefined when `text` is not one. */
export function parseQuantity(text: string): number | undefined {
  const m = QUANTITY.exec(text);
  if (!m) return undefined;
  const [, sign, digits = '', exponent, suffix] = m;
  const scale = exponent ? 10 ** Number(exponent.slice(1)) : suffix ? (SUFFIX[suffix] ?? 1) : 1;
  const value = Number(digits) * scale;
  return sign === '-' ? -value : value;
}

/** Kubernetes' bounds for a bandwidth annotation (pkg/util/bandwidth): 1 kbit/s to 1 Pbit/s. */
export const MIN_BITS_PER_SECOND = 1e3;
export const MAX_BITS_PER_SECOND = 1e15;

/**
 * A bandwidth annotation's rate in bits per second (rounded up, as Kubernetes' `Value()`
 * does), or the reason it is refused.
 */
export function parseBandwidth(text: string): { bitsPerSecond: number } | { error: string } {
  const value = parseQuantity(text);
  if (value === undefined) return { error: `${JSON.stringify(text)} is not a Kubernetes quantity (e.g. 10M, 1G, 500k)` };
  const bits = Math.ceil(value);
  if (bits < MIN_BITS_PER_SECOND) return { error: `${JSON.stringify(text)} is below 1k (1 kbit/s)` };
  if (bits > MAX_BITS_PER_SECOND) return { error: `${JSON.stringify(text)} is above 1P (1 Pbit/s)` };
  return { bitsPerSecond: bits };
}
