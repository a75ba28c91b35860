/**
 * Cost (docs/cost.md): a cost model per deployment priced from the traffic table, cost per inference as metrics,
 * daily and monthly budgets with alerts at 50 / 80 / 100 %, a cost-anomaly alert, and caps that throttle a
 * deployment or route it to a cheaper version.
 */
export { CostMeter, checkBudget, costModelOf, BUDGET_THRESHOLDS } from './meter.ts';
export type { BudgetSetting, Cap, CostMeterOptions, CostReport, CostSettings, DeploymentCost } from './meter.ts';
export { anomaly, periods, priceHours, replicaCost, HOUR_MS, DAY_MS } from './pricing.ts';
export type { AnomalySettings, AnomalyVerdict, CostModel, PricedHour } from './pricing.ts';
