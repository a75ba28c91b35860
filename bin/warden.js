#!/usr/bin/env node
// Entry point: registers tsx so the TypeScript sources run without a build step.
import { setFlagsFromString } from 'node:v8';
// Before anything is allocated in bulk: with V8's allocation-site pretenuring on, a server instance could start
// allocating Node's HTTP request objects straight into the old generation, after which every scavenge promoted
// ≈ 2.5 MB of request garbage and paused 5–7 ms instead of ≈ 0.8 ms (docs/benchmarks.md, "Two states of the
// garbage collector"). Set here rather than on the command line so `warden`, `npm start` and the image all get it.
setFlagsFromString('--no-allocation-site-pretenuring');
import { register } from 'tsx/esm/api';
register();
const { main } = await import('../src/cli/main.ts');
await main(process.argv);
