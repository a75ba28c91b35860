/**
 * The metadata store's change feed and SLO definitions on PostgreSQL: what lets replicas share one store.
 *
 * Triggers record every committed change to what replicas hold in memory (models, versions, aliases, keys,
 * references, review policies, alerting state, rollouts, SLOs, the feature repository) in `metadata_changes`, inside the writing
 * transaction, so no write path can forget to announce itself and a rolled-back write announces nothing.
 */
import type { ChangeTopic, MetadataChange } from '../ports.ts';
import { inTransaction, type PgMigration, type PgPool } from './database.ts';

/** table → [topic, column holding the key ('' for none)]. */
const WATCHED: readonly (readonly [string, ChangeTopic, string])[] = [
  ['models', 'model', 'name'],
  ['model_versions', 'model', 'model'],
  ['model_aliases', 'model', 'model'],
  ['api_keys', 'keys', ''],
  ['monitoring_references', 'reference', 'model'],
  ['review_policies', 'review-policy', 'model'],
  ['alert_silences', 'alerting', ''],
  ['alert_suppressions', 'alerting', ''],
  ['alert_rules', 'alerting', ''],
  ['rollouts', 'rollout', 'deployment'],
  ['slo_definitions', 'slo', 'name'],
];

/** Migration 2 of the PostgreSQL metadata schema. */
export const changeFeedMigration: PgMigration = [
  `CREATE TABLE slo_definitions (
     name TEXT PRIMARY KEY,
     position BIGINT NOT NULL,
     definition TEXT NOT NULL,
     updated_at BIGINT NOT NULL)`,
  `CREATE TABLE slo_revision (id INTEGER PRIMARY KEY CHECK (id = 1), revision BIGINT NOT NULL)`,
  `INSERT INTO slo_revision (id, revision) VALUES (1, 0)`,
  `CREATE TABLE metadata_changes (
     seq BIGSERIAL PRIMARY KEY,
     at BIGINT NOT NULL,
     topic TEXT NOT NULL,
     key TEXT NOT NULL)`,
  `CREATE INDEX metadata_changes_at ON metadata_changes(at)`,
  // The key column is named by the trigger's second argument; to_jsonb reads it from whichever table fired.
  `CREATE FUNCTION warden_record_change() RETURNS trigger LANGUAGE plpgsql AS $$
   DECLARE k TEXT := '';
   BEGIN
     IF TG_ARGV[1] <> '' THEN
       IF TG_OP = 'DELETE' THEN k := to_jsonb(OLD) ->> TG_ARGV[1]; ELSE k := to_jsonb(NEW) ->> TG_ARGV[1]; END IF;
     END IF;
     INSERT INTO metadata_changes (at, topic, key)
       VALUES ((extract(epoch FROM clock_timestamp()) * 1000)::BIGINT, TG_ARGV[0], COALESCE(k, ''));
     RETURN NULL;
   END $$`,
  ...WATCHED.map(([table, topic, column]) => changeTrigger(table, topic, column)),
];

/** The trigger that records every change of `table` under `topic` (keyed by `column`, '' for none); later migrations watch their tables with it. */
export function changeTrigger(table: string, topic: ChangeTopic, column: string): string {
  return `CREATE TRIGGER ${table}_changes AFTER INSERT OR UPDATE OR DELETE ON ${table} FOR EACH ROW EXECUTE FUNCTION warden_record_change('${topic}', '${column}')`;
}

export async function listChanges(pool: PgPool, q: { sinceAt: number; limit: number }): Promise<MetadataChange[]> {
  const r = await pool.query<{ seq: number; at: number; topic: ChangeTopic; key: string }>(
    'SELECT seq, at, topic, key FROM metadata_changes WHERE at >= $1 ORDER BY seq LIMIT $2',
    [q.sinceAt, q.limit],
  );
  return r.rows;
}

export async function storeNow(pool: PgPool): Promise<number> {
  const r = await pool.query<{ now: number }>('SELECT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT AS now');
  return r.rows[0]!.now;
}

export async function pruneChanges(pool: PgPool, before: number): Promise<number> {
  return (await pool.query('DELETE FROM metadata_changes WHERE at < $1', [before])).rowCount ?? 0;
}

export async function listSloDefinitions(pool: PgPool): Promise<{ definitions: unknown[]; revision: number }> {
  // One snapshot for both reads: a definition saved between them must not show under the old revision.
  return inTransaction(pool, async (c) => {
    await c.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    const rows = await c.query<{ definition: string }>('SELECT definition FROM slo_definitions ORDER BY position, name');
    const rev = await c.query<{ revision: number }>('SELECT revision FROM slo_revision WHERE id = 1');
    return { definitions: rows.rows.map((r) => JSON.parse(r.definition) as unknown), revision: rev.rows[0]?.revision ?? 0 };
  });
}

export async function saveSloDefinition(pool: PgPool, name: string, definition: unknown, now: number): Promise<number> {
  return inTransaction(pool, async (c) => {
    // The revision row's lock orders concurrent edits, so positions and revisions never collide.
    const rev = await c.query<{ revision: number }>('UPDATE slo_revision SET revision = revision + 1 WHERE id = 1 RETURNING revision');
    await c.query(
      `INSERT INTO slo_definitions (name, position, definition, updated_at)
       VALUES ($1, (SELECT COALESCE(MAX(position), 0) + 1 FROM slo_definitions), $2, $3)
       ON CONFLICT (name) DO UPDATE SET definition = excluded.definition, updated_at = excluded.updated_at`,
      [name, JSON.stringify(definition), now],
    );
    return rev.rows[0]!.revision;
  });
}

export async function deleteSloDefinition(pool: PgPool, name: string): Promise<number | undefined> {
  return inTransaction(pool, async (c) => {
    const del = await c.query('DELETE FROM slo_definitions WHERE name = $1', [name]);
    if (del.rowCount === 0) return undefined;
    const rev = await c.query<{ revision: number }>('UPDATE slo_revision SET revision = revision + 1 WHERE id = 1 RETURNING revision');
    return rev.rows[0]!.revision;
  });
}
