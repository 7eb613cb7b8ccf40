import { RT_SCOPE } from './constants.js';
import { NetlinkInputError } from './errors.js';

/** Route/address scope: "universe" (global), "site", "link", "host", "nowhere"; other values as numbers. */
export type Scope = 'universe' | 'site' | 'link' | 'host' | 'nowhere' | number;

const BY_NAME: Record<string, number> = {
  universe: RT_SCOPE.UNIVERSE,
  global: RT_SCOPE.UNIVERSE,
  site: RT_SCOPE.SITE,
  link: RT_SCOPE.LINK,
  host: RT_SCOPE.HOST,
  nowhere: RT_SCOPE.NOWHERE,
};

export function parseScope(scope: unknown, field: string): number {
  if (typeof scope === 'number' && Number.isInteger(scope) && scope >= 0 && scope <= 255) return scope;
  if (typeof scope === 'string' && scope in BY_NAME) return BY_NAME[scope]!;
  throw new NetlinkInputError(field, `${JSON.stringify(scope)} is not a scope (universe, site, link, host or 0..255)`);
}

export function scopeName(scope: number): Scope {
  switch (scope) {
    case RT_SCOPE.UNIVERSE:
      return 'universe';
    case RT_SCOPE.SITE:
      return 'site';
    case RT_SCOPE.LINK:
      return 'link';
    case RT_SCOPE.HOST:
      return 'host';
    case RT_SCOPE.NOWHERE:
      return 'nowhere';
    default:
      return scope;
  }
}
