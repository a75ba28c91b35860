import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

export type SqliteDb = Database.Database;

/** A migration is a list of statements applied once, in order, tracked by `PRAGMA user_version`. */
export type Migration = readonly string[];

/**
 * Opens a SQLite database in WAL mode and applies pending migrations in one transaction each.
 * WAL lets readers (API pages, `logs tail`) run while the prediction log writes.
 */
export function openSqlite(file: string, migrations: readonly Migration[]): SqliteDb {
  if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  // NORMAL with WAL survives a process crash (kill -9) without losing committed transactions;
  // only an OS crash or power loss can drop the last ones.
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  const current = db.pragma('user_version', { simple: true }) as number;
  for (let i = current; i < migrations.length; i++) {
    const apply = db.transaction(() => {
      for (const stmt of migrations[i]!) db.exec(stmt);
      db.pragma(`user_version = ${i + 1}`);
    });
    apply();
  }
  return db;
}
