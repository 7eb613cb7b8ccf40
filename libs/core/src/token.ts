/**
 * A typed key into the plugin container.
 *
 * Tokens are compared by `Symbol.for(name)`, so two copies of `@cilia/core` (a plugin
 * installed from npm next to the agent's own copy, say) still agree on every token.
 */
export interface Token<T> {
  /** The container key. */
  readonly id: symbol;
  /** Stable, human-readable name used in error messages, e.g. `"cilia.Ipam"`. */
  readonly name: string;
  /**
   * `true` when several plugins may provide this token at once (an extension point);
   * consumers then receive every provided value. Single-provider tokens refuse a second
   * provider.
   */
  readonly multiple: boolean;
  /** Phantom field carrying `T`; never set at run time. */
  readonly __type?: T;
}

/** Any token, whatever it carries. */
export type AnyToken = Token<unknown>;

/** The value type a token carries. */
export type TokenType<K> = K extends Token<infer T> ? T : never;

/** Options of {@link defineToken}. */
export interface TokenOptions {
  /** Several providers allowed (an extension point). Default: false. */
  multiple?: boolean;
}

/** Creates (or finds again, by name) the token for a service interface. */
export function defineToken<T>(name: string, options: TokenOptions = {}): Token<T> {
  return Object.freeze({ id: Symbol.for(name), name, multiple: options.multiple ?? false });
}
