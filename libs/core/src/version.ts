/**
 * The plugin API version this copy of `@cilia/core` implements. A plugin's `apiVersion`
 * range is checked against it. Kept equal to the package version by a test.
 */
export const CORE_API_VERSION = '1.3.0';
