import type { JsonSchema } from './resources.js';

/** One field a schema refuses, as the real server reports it in `details.causes`. */
export interface FieldError {
  readonly field: string;
  readonly reason: 'FieldValueRequired' | 'FieldValueInvalid' | 'FieldValueNotSupported';
  readonly message: string;
}

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function matchesType(schema: JsonSchema, value: unknown): boolean {
  if (value === null) return schema.nullable === true;
  if (schema['x-kubernetes-int-or-string']) return typeof value === 'string' || Number.isInteger(value);
  if (!schema.type) return true;
  const actual = typeOf(value);
  return actual === schema.type || (schema.type === 'number' && actual === 'integer');
}

/**
 * Validates `value` against a structural schema and prunes the fields it does not know
 * (unless `x-kubernetes-preserve-unknown-fields`), as the API server does for custom
 * resources. Returns the pruned value and every refused field.
 */
export function validateAndPrune(schema: JsonSchema, value: unknown, path: string, errors: FieldError[] = []): { value: unknown; errors: FieldError[] } {
  const at = path || '<root>';
  if (!matchesType(schema, value)) {
    errors.push({ field: at, reason: 'FieldValueInvalid', message: `Invalid value: "${typeOf(value)}": ${at} in body must be of type ${schema.type}: "${typeOf(value)}"` });
    return { value, errors };
  }
  if (value === null) return { value, errors };
  if (schema.enum && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) {
    errors.push({ field: at, reason: 'FieldValueNotSupported', message: `Unsupported value: ${JSON.stringify(value)}: supported values: ${schema.enum.map((e) => JSON.stringify(e)).join(', ')}` });
  }
  if (typeof value === 'string') {
    if (schema.pattern && !new RegExp(schema.pattern).test(value)) errors.push({ field: at, reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(value)}: ${at} in body should match '${schema.pattern}'` });
    if (schema.minLength !== undefined && value.length < schema.minLength) errors.push({ field: at, reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(value)}: ${at} in body should be at least ${schema.minLength} chars long` });
    if (schema.maxLength !== undefined && value.length > schema.maxLength) errors.push({ field: at, reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(value)}: ${at} in body may not be longer than ${schema.maxLength}` });
  }
  if (typeof value === 'number') {
    if (schema.minimum !== undefined && value < schema.minimum) errors.push({ field: at, reason: 'FieldValueInvalid', message: `Invalid value: ${value}: ${at} in body should be greater than or equal to ${schema.minimum}` });
    if (schema.maximum !== undefined && value > schema.maximum) errors.push({ field: at, reason: 'FieldValueInvalid', message: `Invalid value: ${value}: ${at} in body should be less than or equal to ${schema.maximum}` });
  }
  for (const alternatives of [schema.oneOf, schema.anyOf]) {
    if (!alternatives) continue;
    const fits = alternatives.filter((alt) => validateAndPrune({ ...alt, type: alt.type ?? schema.type }, structuredClone(value), path).errors.length === 0).length;
    if (schema.oneOf === alternatives ? fits !== 1 : fits === 0) errors.push({ field: at, reason: 'FieldValueInvalid', message: `Invalid value: ${at} in body must validate ${schema.oneOf === alternatives ? 'one and only one' : 'at least one'} schema` });
  }
  if (Array.isArray(value)) {
    if (schema.minItems !== undefined && value.length < schema.minItems) errors.push({ field: at, reason: 'FieldValueInvalid', message: `Invalid value: ${value.length}: ${at} in body should have at least ${schema.minItems} items` });
    if (schema.maxItems !== undefined && value.length > schema.maxItems) errors.push({ field: at, reason: 'FieldValueInvalid', message: `Invalid value: ${value.length}: ${at} in body should have at most ${schema.maxItems} items` });
    const items = schema.items;
    return { value: items ? value.map((v, i) => validateAndPrune(items, v, `${path}[${i}]`, errors).value) : value, errors };
  }
  if (typeof value !== 'object') return { value, errors };
  const object = value as Record<string, unknown>;
  for (const field of schema.required ?? []) {
    if (object[field] === undefined) errors.push({ field: path ? `${path}.${field}` : field, reason: 'FieldValueRequired', message: 'Required value' });
  }
  const out: Record<string, unknown> = {};
  const preserve = schema['x-kubernetes-preserve-unknown-fields'] === true;
  for (const [field, v] of Object.entries(object)) {
    const child = path ? `${path}.${field}` : field;
    const known = schema.properties?.[field];
    if (known) out[field] = validateAndPrune(known, v, child, errors).value;
    else if (typeof schema.additionalProperties === 'object') out[field] = validateAndPrune(schema.additionalProperties, v, child, errors).value;
    else if (preserve || schema.additionalProperties === true || (!schema.properties && schema.type !== 'object')) out[field] = v;
    // else: pruned, as a structural schema does
  }
  return { value: out, errors };
}
