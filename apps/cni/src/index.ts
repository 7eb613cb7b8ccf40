export { runPlugin } from './plugin.js';
export type { CniLogger, PluginInput, PluginOutcome } from './plugin.js';
export { CniError, ErrorCode } from './errors.js';
export type { CniErrorJson, ErrorCodeValue } from './errors.js';
export type { CniInterface, CniIp, CniResult, CniRoute } from './result.js';
export { DEFAULT_SOCKET } from './config.js';
export { SUPPORTED_VERSIONS } from './versions.js';
export { DEFAULT_CNI_BIN_DIR, installLauncher } from './install.js';
export type { InstallOptions } from './install.js';
