import type { Logger } from 'pino';
import { WardenError } from '../errors.ts';
import type { Registry } from '../registry/index.ts';
import { bikeSharingDemoOptions, train, type TrainerKind } from './trainer/index.ts';

/** The demo models: hourly rentals (regression) and busy-hour (cnt above the median of its training rows, 108) classifier. */
export const DEMO_MODELS: readonly { name: string; kind: TrainerKind; description: string }[] = [
  {
    name: 'bike-demand',
    kind: 'linear',
    description: 'Hourly bike rentals (cnt) from weather and calendar, trained on 2011 (UCI Bike Sharing, Fanaee-T & Gama 2013)',
  },
  {
    name: 'bike-busy',
    kind: 'logistic',
    description: 'Probability that an hour is busy (cnt above 108, the median of its 2011 training rows), trained on 2011 (UCI Bike Sharing)',
  },
];

/**
 * Trains the demo models on the bike-sharing CSV shipped in data/ and registers each as `champion`,
 * unless the model already exists (a restart keeps what is there).
 */
export async function seedDemo(registry: Registry, logger: Logger): Promise<string[]> {
  const created: string[] = [];
  const existing = new Set((await registry.listModels()).map((m) => m.name));
  for (const demo of DEMO_MODELS) {
    if (existing.has(demo.name)) continue;
    const result = await train(bikeSharingDemoOptions(demo.kind), (msg) => logger.debug({ model: demo.name }, msg));
    let pushed;
    try {
      pushed = await registry.push({
        model: demo.name,
        bytes: result.onnx,
        description: demo.description,
        aliases: ['champion'],
        actor: 'warden serve --demo',
        metadata: { description: demo.description, tags: { demo: 'true', dataset: 'uci-bike-sharing-2011' } },
      });
    } catch (e) {
      // Replicas started together on one shared store all find the model missing; the first push wins and the others
      // keep what it registered rather than failing to start.
      if (e instanceof WardenError && e.code === 'WARDEN_CONFLICT' && (await registry.listModels()).some((m) => m.name === demo.name)) {
        logger.info({ model: demo.name }, 'demo model registered by another replica meanwhile; keeping it');
        continue;
      }
      throw e;
    }
    logger.info({ model: demo.name, version: pushed.version.version, metrics: result.metrics }, 'demo model trained and deployed as champion');
    created.push(demo.name);
  }
  return created;
}
