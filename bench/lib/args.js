/** Tiny `--key value` parser for the subject scripts (they take no positional arguments). */
export function parseArgs(argv = process.argv.slice(2)) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const key = argv[i];
    if (!key.startsWith('--')) throw new Error(`unexpected argument ${key}`);
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) out[key.slice(2)] = true;
    else {
      out[key.slice(2)] = next;
      i++;
    }
  }
  return out;
}

/** Shuts down with `stop` on SIGTERM/SIGINT, then exits; a second signal exits at once. */
export function onShutdown(stop) {
  let stopping = false;
  const handler = async () => {
    if (stopping) process.exit(1);
    stopping = true;
    try {
      await stop();
    } catch (error) {
      console.error(`shutdown: ${error?.message ?? error}`);
    }
    process.exit(0);
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
}
