import Database from 'better-sqlite3';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

export type SqliteDb = Database.Database;

/** A migration is a list of statements applied once, in order, tracked by `PRAGMA user_version`. */
export type Migration = readonly string[];

/**
 * Opens a SQLite database in WAL mode and applies pending migrations in one transaction, under the write lock.
 * WAL lets readers (API pages, `logs tail`) run while the prediction log writes.
 */
export function openSqlite(file: string, migrations: readonly Migration[]): SqliteDb {
  if (file !== ':memory:') mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const db = new Database(file);
  // First, so every statement below (switching to WAL included) waits for another process's lock.
  db.pragma('busy_timeout = 5000');
  // Switching a fresh file to WAL takes its lock from a read lock up; when two connections do so at once SQLite
  // answers one of them SQLITE_BUSY at once (a deadlock the busy timeout cannot wait out), so that one tries again.
  retryBusy(() => db.pragma('journal_mode = WAL'));
  // NORMAL with WAL survives a process crash (kill -9) without losing committed transactions;
  // only an OS crash or power loss can drop the last ones.
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  const version = () => db.pragma('user_version', { simple: true }) as number;
  // An up-to-date file needs no lock. Otherwise the version is read again under the write lock (BEGIN
  // IMMEDIATE): two processes opening a fresh file at once would both see version 0, and the second would
  // fail creating tables the first made.
  if (retryBusy(version) < migrations.length) {
    const migrate = db.transaction(() => {
      for (let i = version(); i < migrations.length; i++) {
        for (const stmt of migrations[i]!) db.exec(stmt);
        db.pragma(`user_version = ${i + 1}`);
      }
    });
    retryBusy(() => migrate.immediate());
  }
  return db;
}

const BUSY_RETRY_MS = 5000;
/** What `Atomics.wait` sleeps on between tries. */
const pause = new Int32Array(new SharedArrayBuffer(4));

/**
 * Runs `fn`, again after a short pause while SQLite answers SQLITE_BUSY, for up to 5 s. Only at open (start-up),
 * never on the request path: the pause blocks the thread.
 */
function retryBusy<T>(fn: () => T): T {
  const deadline = Date.now() + BUSY_RETRY_MS;
  for (let attempt = 0; ; attempt++) {
    try {
      return fn();
    } catch (e) {
      const code = (e as { code?: unknown }).code;
      if (typeof code !== 'string' || !code.startsWith('SQLITE_BUSY') || Date.now() >= deadline) throw e;
      Atomics.wait(pause, 0, 0, Math.min(50, 5 * (attempt + 1)));
    }
  }
}
