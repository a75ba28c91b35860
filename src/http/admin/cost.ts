import type { FastifyInstance } from 'fastify';
import { checkBudget, type CostMeter } from '../../cost/index.ts';
import { WardenError } from '../../errors.ts';
import type { Registry } from '../../registry/index.ts';
import { noteAudit } from '../../security/index.ts';
import type { MetadataStore } from '../../storage/index.ts';
import { actorOf } from '../actor.ts';
import type { Guard } from '../auth.ts';

const bad = (msg: string) => new WardenError('WARDEN_BAD_REQUEST', msg);
const OFF = 'cost is off on this server: set cost.pricePerCpuHour (or cost.model "replica" and cost.pricePerReplicaHour) in the config (docs/cost.md)';

/**
 * Cost (docs/cost.md): every deployment's spend, cost per inference, budgets and caps; one deployment's spend by
 * day; budgets set and removed by admins. Every answer is priced after this replica has written its latest counts.
 */
export function registerCostRoutes(
  app: FastifyInstance,
  deps: { cost?: CostMeter; metadata: MetadataStore; registry: Registry; guard: Guard; modelGuard: Guard },
): void {
  const meter = () => {
    if (!deps.cost) throw new WardenError('WARDEN_NOT_FOUND', OFF);
    return deps.cost;
  };
  app.get('/api/v1/cost', { onRequest: deps.guard('viewer') }, async () => (deps.cost ? deps.cost.report(true) : { enabled: false, reason: OFF }));

  app.get<{ Params: { name: string }; Querystring: { days?: string } }>('/api/v1/cost/:name', { onRequest: deps.modelGuard('viewer') }, async (req) => {
    const cost = meter();
    for (const k of Object.keys(req.query)) if (k !== 'days') throw bad(`unknown parameter "${k.slice(0, 40)}"; this route takes days`);
    const raw = req.query.days;
    const days = raw === undefined || raw === '' ? 31 : Number(raw);
    if (!Number.isInteger(days) || days < 1 || days > 400) throw bad('days must be a whole number of days from 1 to 400 (default 31)');
    await deps.registry.getModel(req.params.name);
    const report = await cost.report(true);
    const summary = report.deployments.find((d) => d.deployment === req.params.name) ?? null;
    return { deployment: req.params.name, currency: report.currency, model: report.model, summary, days: await cost.daily(req.params.name, days) };
  });

  app.get('/api/v1/cost/budgets', { onRequest: deps.guard('viewer') }, async () => ({
    budgets: [...meter().budgets()].map(([deployment, b]) => ({ deployment, ...b })),
  }));

  app.put<{ Params: { name: string }; Body: unknown }>('/api/v1/cost/budgets/:name', { onRequest: deps.modelGuard('admin') }, async (req) => {
    const cost = meter();
    const budget = checkBudget(req.body);
    const { name } = req.params;
    await deps.registry.getModel(name);
    if (budget.cap === 'route') {
      await deps.registry.getVersion(name, budget.capVersion!).catch(() => {
        throw new WardenError('WARDEN_VERSION_NOT_FOUND', `${name} has no version ${budget.capVersion}; a route cap serves a registered version ('warden models list' shows them)`);
      });
    }
    const before = cost.budgets().get(name);
    const record = { deployment: name, ...budget, updatedAt: Date.now(), updatedBy: actorOf(req) };
    await deps.metadata.saveCostBudget(record);
    noteAudit({ object: `deployment:${name}`, change: 'cost.budget.set', ...(before ? { before: { daily: before.daily, monthly: before.monthly, cap: before.cap, capVersion: before.capVersion } } : {}), after: budget });
    await cost.refresh();
    return record;
  });

  app.delete<{ Params: { name: string } }>('/api/v1/cost/budgets/:name', { onRequest: deps.modelGuard('admin') }, async (req, reply) => {
    const cost = meter();
    if (!(await deps.metadata.deleteCostBudget(req.params.name))) {
      throw new WardenError('WARDEN_NOT_FOUND', `no budget set by the API for ${req.params.name} (budgets from the config file are changed there)`);
    }
    noteAudit({ object: `deployment:${req.params.name}`, change: 'cost.budget.delete' });
    await cost.refresh();
    return reply.status(204).send();
  });
}
