import { access } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { definePlugin, defineToken, z } from '@cilia/core';

/** What this plugin offers other plugins through the container. */
export interface OverlayGeneveService {
  /** Absolute path of the compiled BPF object this plugin ships. */
  readonly objectPath: string;
  /** The skb mark the tc program is configured to set (0: it leaves marks alone). */
  readonly mark: number;
}

/**
 * Token of {@link OverlayGeneveService}. Plugins never import each other: a consumer
 * declares the token itself, `defineToken<ItsCopyOfTheInterface>('@cilia/plugin-overlay-geneve.Service')`,
 * and gets this plugin's value because tokens match by name.
 */
export const OverlayGeneveToken = defineToken<OverlayGeneveService>('@cilia/plugin-overlay-geneve.Service');

const config = z.object({
  greeting: z.string().min(1).default('hello from overlay-geneve').describe('Logged once when the plugin starts'),
  mark: z
    .number()
    .int()
    .min(0)
    .max(0xffff_ffff)
    .default(0)
    .describe('skb mark the tc program sets on packets it passes; 0 leaves the mark alone'),
});

/** The validated `overlay-geneve:` section of the agent config, defaults applied. */
export type OverlayGeneveConfig = z.infer<typeof config>;

// `../` is the package root from src/ (tests, through the "@cilia/source"
// condition) and from dist/ (the built and published package).
const objectUrl = new URL('../dist/bpf/overlay-geneve.o', import.meta.url);
const { version } = createRequire(import.meta.url)('../package.json') as { version: string };

/** Geneve overlay encapsulated in eBPF (identity in the VNI) for pods across nodes */
export default definePlugin<OverlayGeneveConfig>({
  name: '@cilia/plugin-overlay-geneve',
  version,
  apiVersion: '^1',
  description: "Geneve overlay encapsulated in eBPF (identity in the VNI) for pods across nodes",
  config,
  provides: [OverlayGeneveToken],
  bpf: [{ object: objectUrl }],
  register(bind, ctx) {
    bind(OverlayGeneveToken).toConstant({ objectPath: fileURLToPath(objectUrl), mark: ctx.config.mark });
  },
  async start(ctx) {
    const objectPath = fileURLToPath(objectUrl);
    try {
      await access(objectPath);
    } catch {
      throw new Error(`BPF object ${objectPath} is missing; build the package first (nx run @cilia/plugin-overlay-geneve:build)`);
    }
    ctx.logger.info({ object: objectPath, mark: ctx.config.mark }, ctx.config.greeting);
  },
  stop(ctx) {
    ctx.logger.info('stopped');
  },
});
