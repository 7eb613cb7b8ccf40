// Kubernetes name and label syntax. Each check returns why a text is invalid, or undefined.

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME_PART = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;
const SERVICE_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** An object name such as a policy's: RFC 1123 subdomain. */
export function dnsSubdomainProblem(text: string): string | undefined {
  if (text.length === 0) return 'must not be empty';
  if (text.length > 253) return `must be at most 253 characters (has ${text.length})`;
  if (!DNS_SUBDOMAIN.test(text)) {
    return `${JSON.stringify(text)} is not a DNS subdomain (lowercase letters, digits, '-' and '.', starting and ending with a letter or digit)`;
  }
  return undefined;
}

/** A namespace name: RFC 1123 label. */
export function dnsLabelProblem(text: string): string | undefined {
  if (text.length === 0) return 'must not be empty';
  if (text.length > 63) return `must be at most 63 characters (has ${text.length})`;
  if (!DNS_LABEL.test(text)) {
    return `${JSON.stringify(text)} is not a DNS label (lowercase letters, digits and '-', starting and ending with a letter or digit)`;
  }
  return undefined;
}

/** A Kubernetes label key: `[prefix/]name`, prefix a DNS subdomain, name ≤ 63 characters. */
export function labelKeyProblem(text: string): string | undefined {
  if (text.length === 0) return 'label key must not be empty';
  const slash = text.indexOf('/');
  const name = slash < 0 ? text : text.slice(slash + 1);
  if (slash >= 0) {
    const prefix = text.slice(0, slash);
    const problem = dnsSubdomainProblem(prefix);
    if (problem) return `label key prefix ${JSON.stringify(prefix)}: ${problem}`;
  }
  if (name.length === 0) return `label key ${JSON.stringify(text)} has an empty name`;
  if (name.length > 63) return `label key name must be at most 63 characters (has ${name.length})`;
  if (!QUALIFIED_NAME_PART.test(name)) {
    return `${JSON.stringify(text)} is not a valid label key (letters, digits, '-', '_' and '.', starting and ending with a letter or digit, optionally behind a DNS prefix and '/')`;
  }
  return undefined;
}

/** A Kubernetes label value: empty, or ≤ 63 characters of letters, digits, '-', '_', '.'. */
export function labelValueProblem(text: string): string | undefined {
  if (text.length > 63) return `label value must be at most 63 characters (has ${text.length})`;
  if (!LABEL_VALUE.test(text)) {
    return `${JSON.stringify(text)} is not a valid label value (letters, digits, '-', '_' and '.', starting and ending with a letter or digit)`;
  }
  return undefined;
}

/** A named port (IANA_SVC_NAME): ≤ 15 lowercase letters, digits and '-', at least one letter, no '--'. */
export function portNameProblem(text: string): string | undefined {
  if (text.length === 0) return 'port name must not be empty';
  if (text.length > 15) return `port name ${JSON.stringify(text)} must be at most 15 characters`;
  if (!SERVICE_NAME.test(text)) {
    return `port name ${JSON.stringify(text)} may only hold lowercase letters, digits and '-', starting and ending with a letter or digit`;
  }
  if (text.includes('--')) return `port name ${JSON.stringify(text)} must not contain '--'`;
  if (!/[a-z]/.test(text)) return `port name ${JSON.stringify(text)} needs at least one letter (a port number is written without quotes)`;
  return undefined;
}
