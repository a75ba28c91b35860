// Worker entry in plain JS: registers tsx so the TypeScript worker module can load in this thread
// (Node 20 does not apply the parent's --import hooks to workers).
import { register } from 'tsx/esm/api';
import { workerData } from 'node:worker_threads';

register();
await import(workerData.entry);
