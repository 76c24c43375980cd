#!/usr/bin/env node
// The CLI as one file (`npm run bundle`): loading one module instead of about a hundred takes ~35 ms off every start.
import { main } from '../dist/cli/main.bundle.js';

await main(process.argv.slice(2));
