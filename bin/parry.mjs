#!/usr/bin/env node
// Entry point of the `parry` command: runs the compiled CLI (build with `npm run build`).
import { main } from '../dist/src/cli/main.js';

const code = await main(process.argv.slice(2));
// A failed command exits at once: a progress bar's timer or a worker pool left running by the
// error must not keep the process alive (stderr is written synchronously to pipes and files).
if (code !== 0) process.exit(code);
process.exitCode = code;
