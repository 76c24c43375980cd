/** Loaded with `node --import`: puts harness.js in place of postgres.js's tests/test.js (see hooks.js). */
import { register } from 'node:module';

register('./hooks.js', import.meta.url);
