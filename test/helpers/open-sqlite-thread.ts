// Worker-thread entry for the concurrent-open test: opens (and migrates) the metadata database named in
// workerData and reports 'ok' or the error.
import { parentPort, workerData } from 'node:worker_threads';
import { openSqlite } from '../../src/storage/sqlite/database.ts';
import { metadataMigrations } from '../../src/storage/sqlite/metadata-store.ts';

try {
  openSqlite((workerData as { file: string }).file, metadataMigrations).close();
  parentPort!.postMessage('ok');
} catch (e) {
  parentPort!.postMessage(`error: ${(e as Error).message}`);
}
