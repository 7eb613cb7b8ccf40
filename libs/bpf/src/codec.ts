// Typed codecs between TS values and the bytes of C structs. Codecs write into and read from
// caller-supplied buffers at an offset, so a map keeps one key and one value buffer and
// encodes into them on every call instead of allocating.
//
// Multi-byte integers are host order (little-endian on every platform Cilia targets) unless
// the codec says "be" (network order, as packet fields are stored).

/** Encodes a `T` into `size` bytes and back. */
export interface Codec<T> {
  readonly size: number;
  /** C alignment of the type (1, 2, 4 or 8). */
  readonly align: number;
  /** True for padding: encoded as zeros, left out of decoded structs. */
  readonly padding?: boolean;
  encode(value: T, buf: Buffer, offset: number): void;
  decode(buf: Buffer, offset: number): T;
}

/** The value type a codec produces. */
export type CodecValue<C> = C extends Codec<infer T> ? T : never;

function scalar<T>(size: number, encode: Codec<T>['encode'], decode: Codec<T>['decode']): Codec<T> {
  return { size, align: size, encode, decode };
}

export const u8: Codec<number> = scalar(1, (v, b, o) => void b.writeUInt8(v, o), (b, o) => b.readUInt8(o));
export const u16: Codec<number> = scalar(2, (v, b, o) => void b.writeUInt16LE(v, o), (b, o) => b.readUInt16LE(o));
export const u32: Codec<number> = scalar(4, (v, b, o) => void b.writeUInt32LE(v, o), (b, o) => b.readUInt32LE(o));
export const i32: Codec<number> = scalar(4, (v, b, o) => void b.writeInt32LE(v, o), (b, o) => b.readInt32LE(o));
export const u64: Codec<bigint> = scalar(8, (v, b, o) => void b.writeBigUInt64LE(v, o), (b, o) => b.readBigUInt64LE(o));
export const i64: Codec<bigint> = scalar(8, (v, b, o) => void b.writeBigInt64LE(v, o), (b, o) => b.readBigInt64LE(o));
/** A u64 counter read as a JS number (exact below 2^53). */
export const u64n: Codec<number> = scalar(
  8,
  (v, b, o) => void b.writeBigUInt64LE(BigInt(v), o),
  (b, o) => Number(b.readBigUInt64LE(o)),
);
/** `__be16`: network byte order. */
export const be16: Codec<number> = scalar(2, (v, b, o) => void b.writeUInt16BE(v, o), (b, o) => b.readUInt16BE(o));
/** `__be32`: network byte order. */
export const be32: Codec<number> = scalar(4, (v, b, o) => void b.writeUInt32BE(v, o), (b, o) => b.readUInt32BE(o));

/** An IPv4 address stored as `__be32`, as a dotted string. */
export const ipv4: Codec<string> = {
  size: 4,
  align: 4,
  encode(v, b, o) {
    const parts = v.split('.');
    if (parts.length !== 4) throw new TypeError(`not an IPv4 address: '${v}'`);
    for (let i = 0; i < 4; i++) {
      const n = Number(parts[i]);
      if (!Number.isInteger(n) || n < 0 || n > 255) throw new TypeError(`not an IPv4 address: '${v}'`);
      b[o + i] = n;
    }
  },
  decode: (b, o) => `${b[o]}.${b[o + 1]}.${b[o + 2]}.${b[o + 3]}`,
};

/** `n` raw bytes (`__u8 x[n]`). Decoding copies, so the result outlives the buffer. */
export function bytes(n: number): Codec<Uint8Array> {
  return {
    size: n,
    align: 1,
    encode(v, b, o) {
      if (v.length !== n) throw new RangeError(`expected ${n} bytes, got ${v.length}`);
      b.set(v, o);
    },
    decode: (b, o) => new Uint8Array(b.subarray(o, o + n)),
  };
}

/** `T x[n]`. */
export function array<T>(element: Codec<T>, n: number): Codec<T[]> {
  return {
    size: element.size * n,
    align: element.align,
    encode(v, b, o) {
      if (v.length !== n) throw new RangeError(`expected ${n} elements, got ${v.length}`);
      for (let i = 0; i < n; i++) element.encode(v[i] as T, b, o + i * element.size);
    },
    decode(b, o) {
      const out = new Array<T>(n);
      for (let i = 0; i < n; i++) out[i] = element.decode(b, o + i * element.size);
      return out;
    },
  };
}

/** Explicit padding bytes: written as zero, not part of the decoded value. */
export function pad(n: number): Codec<undefined> {
  return {
    size: n,
    align: 1,
    padding: true,
    encode: (_v, b, o) => void b.fill(0, o, o + n),
    decode: () => undefined,
  };
}

type Fields = Record<string, Codec<unknown>>;
type PadKeys<F extends Fields> = { [K in keyof F]: F[K] extends Codec<undefined> ? K : never }[keyof F];

/** The object type of a struct codec: every non-padding field. */
export type StructValue<F extends Fields> = { [K in Exclude<keyof F, PadKeys<F>>]: CodecValue<F[K]> };

/** One field's place in the struct, for the BTF layout check. */
export interface FieldLayout {
  /** TS field name. */
  readonly name: string;
  /** C member name (snake_case of the TS name unless overridden). */
  readonly cName: string;
  readonly offset: number;
  readonly size: number;
  readonly padding: boolean;
}

/** A codec for a C struct, with its computed layout. */
export interface StructCodec<T> extends Codec<T> {
  /** The C struct tag, e.g. `cilia_event_hdr`. */
  readonly cName: string;
  readonly fields: readonly FieldLayout[];
}

function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/**
 * A C struct laid out with the C rules: each field at the next multiple of its alignment,
 * the total rounded up to the largest alignment. Field order is the object's key order.
 *
 * @param cName the struct tag in C, checked against BTF by the layout test
 * @param fields TS field name → codec, in C declaration order
 * @param cNames C member names where snake_case of the TS name is not right
 */
export function struct<F extends Fields>(
  cName: string,
  fields: F,
  cNames: Partial<Record<keyof F, string>> = {},
): StructCodec<StructValue<F>> {
  const layout: FieldLayout[] = [];
  const codecs: Array<Codec<unknown>> = [];
  let offset = 0;
  let align = 1;
  for (const [name, codec] of Object.entries(fields)) {
    offset = Math.ceil(offset / codec.align) * codec.align;
    const isPad = codec.padding === true;
    layout.push({ name, cName: cNames[name as keyof F] ?? snakeCase(name), offset, size: codec.size, padding: isPad });
    codecs.push(codec);
    offset += codec.size;
    align = Math.max(align, codec.align);
  }
  const size = Math.ceil(offset / align) * align;
  const { encode, decode } = compileStruct<StructValue<F>>(cName, layout, codecs, size);
  return { cName, size, align, fields: layout, encode, decode };
}

/**
 * Generates straight-line encode/decode functions for a struct: no per-call loops over the
 * field list, one object literal per decode (a stable shape V8 optimises well). Field names
 * come from code, never from input, and are emitted as JSON string literals.
 */
function compileStruct<T>(
  cName: string,
  layout: readonly FieldLayout[],
  codecs: ReadonlyArray<Codec<unknown>>,
  size: number,
): Pick<Codec<T>, 'encode' | 'decode'> {
  const enc: string[] = [];
  const dec: string[] = [];
  // Holes (alignment gaps, tail padding, pad fields) are zeroed: kernel hash keys compare them.
  let covered = 0;
  const holes: Array<[number, number]> = [];
  layout.forEach((f, i) => {
    if (f.offset > covered) holes.push([covered, f.offset]);
    covered = f.offset + f.size;
    if (f.padding) {
      holes.push([f.offset, f.offset + f.size]);
      return;
    }
    const key = JSON.stringify(f.name);
    const label = JSON.stringify(`${cName}.${f.name} is missing`);
    enc.push(`f = ${key}; x = v[${key}]; if (x === undefined) throw new TypeError(${label}); c[${i}].encode(x, b, at + ${f.offset});`);
    dec.push(`${key}: c[${i}].decode(b, at + ${f.offset})`);
  });
  if (size > covered) holes.push([covered, size]);
  const zero = holes
    .map(([from, to]) =>
      to - from <= 8
        ? Array.from({ length: to - from }, (_, k) => `b[at + ${from + k}] = 0;`).join(' ')
        : `b.fill(0, at + ${from}, at + ${to});`,
    )
    .join(' ');
  // A bad field value throws naming the field (`struct.field: reason`).
  const where = JSON.stringify(`${cName}.`);
  const encode = new Function(
    'c',
    `return function encode(v, b, at) { let x, f = ''; try { ${zero} ${enc.join(' ')} } catch (e) {` +
      ` if (e instanceof TypeError && e.message.startsWith(${where})) throw e;` +
      ` throw new RangeError(${where} + f + ': ' + (e && e.message), { cause: e }); } };`,
  )(codecs);
  const decode = new Function('c', `return function decode(b, at) { return { ${dec.join(', ')} }; };`)(codecs);
  return { encode: encode as Codec<T>['encode'], decode: decode as Codec<T>['decode'] };
}
