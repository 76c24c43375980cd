/**
 * @module
 * How the user runs pgdev, so that the commands pgdev suggests can be pasted back: `npx pgdev` under npm (npx, an
 * npm script, `npm test`), `pnpm exec pgdev` and `yarn pgdev` under those, plain `pgdev` otherwise (a global
 * install, or a PATH that includes node_modules/.bin).
 */

/** Package managers announce themselves to the processes they start through `npm_config_user_agent`. */
const RUNNERS = [
  ['pnpm/', 'pnpm exec pgdev'],
  ['yarn/', 'yarn pgdev'],
  ['bun/', 'bunx pgdev'],
  ['npm/', 'npx pgdev'],
] as const;

export function pgdevCommand(env: NodeJS.ProcessEnv = process.env): string {
  const agent = env.npm_config_user_agent ?? (env.npm_command ? 'npm/' : '');
  return RUNNERS.find(([prefix]) => agent.startsWith(prefix))?.[1] ?? 'pgdev';
}
