/** @module The command pgdev suggests follows the package manager that ran it, told by npm's environment variables. */
import { describe, expect, it } from 'vitest';
import { pgdevCommand } from './command-name.js';

describe('pgdevCommand', () => {
  it('names the runner from npm_config_user_agent, else npm_command, else plain pgdev', () => {
    expect(pgdevCommand({ npm_config_user_agent: 'npm/11.19.1 node/v20.20.2 linux x64 workspaces/false', npm_command: 'exec' })).toBe('npx pgdev');
    expect(pgdevCommand({ npm_config_user_agent: 'pnpm/9.0.0 npm/? node/v20.0.0 linux x64' })).toBe('pnpm exec pgdev');
    expect(pgdevCommand({ npm_config_user_agent: 'yarn/4.0.0 npm/? node/v20.0.0 linux x64' })).toBe('yarn pgdev');
    expect(pgdevCommand({ npm_config_user_agent: 'bun/1.2.0 npm/? node/v22.0.0 linux x64' })).toBe('bunx pgdev');
    expect(pgdevCommand({ npm_command: 'run-script' })).toBe('npx pgdev');
    expect(pgdevCommand({})).toBe('pgdev');
  });
});
