/**
 * @module
 * The busy poller spins after a touch, stops by itself once its window has passed, and burns no CPU afterwards.
 */
import fs from 'node:fs';
import os from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { busyPollMicros, createBusyPoll, DEFAULT_BUSY_POLL_MICROS, type BusyPoll } from './busy-poll.js';

const supported = process.platform === 'linux' && os.availableParallelism() >= 2;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (condition()) return true;
    await sleep(1);
  }
  return condition();
}

describe('busyPollMicros', () => {
  it.runIf(supported)('reads PGDEV_BUSY_POLL_US, defaulting to 1 ms and treating junk or 0 as off', () => {
    expect(busyPollMicros({})).toBe(DEFAULT_BUSY_POLL_MICROS);
    expect(busyPollMicros({ PGDEV_BUSY_POLL_US: '' })).toBe(DEFAULT_BUSY_POLL_MICROS);
    expect(busyPollMicros({ PGDEV_BUSY_POLL_US: '250' })).toBe(250);
    expect(busyPollMicros({ PGDEV_BUSY_POLL_US: '0' })).toBe(0);
    expect(busyPollMicros({ PGDEV_BUSY_POLL_US: 'fast' })).toBe(0);
    expect(busyPollMicros({ PGDEV_BUSY_POLL_US: '-5' })).toBe(0);
    expect(busyPollMicros({ PGDEV_BUSY_POLL_US: '1e9' })).toBe(100_000);
  });
});

describe('createBusyPoll', () => {
  let poll: BusyPoll | undefined;
  afterEach(async () => {
    await poll?.stop();
    poll = undefined;
  });

  it.runIf(supported)('spins after a touch and stops once the window has passed', async () => {
    poll = createBusyPoll({ micros: 30_000 });
    expect(poll.spinning).toBe(false);
    poll.touch();
    expect(poll.spinning).toBe(true);
    expect(await until(() => !poll!.spinning, 5_000)).toBe(true);
    // A later touch wakes it again.
    poll.touch();
    expect(poll.spinning).toBe(true);
    expect(await until(() => !poll!.spinning, 5_000)).toBe(true);
  });

  it.runIf(supported)('keeps spinning while touches keep coming', async () => {
    poll = createBusyPoll({ micros: 20_000 });
    for (let i = 0; i < 10; i++) {
      poll.touch();
      await sleep(5);
      expect(poll.spinning).toBe(true);
    }
  });

  it.runIf(supported)('burns no CPU once it has stopped spinning', async () => {
    poll = createBusyPoll({ micros: 5_000 });
    poll.touch();
    await sleep(20); // the worker is running, spinning for 5 ms
    expect(await until(() => !poll!.spinning, 5_000)).toBe(true);
    const before = process.cpuUsage();
    await sleep(300);
    const used = process.cpuUsage(before);
    // Every thread of the process counts: a worker still spinning would show about 300 ms here.
    expect((used.user + used.system) / 1000).toBeLessThan(60);
  });

  it.runIf(supported)('lowers the priority of its own thread only', async () => {
    poll = createBusyPoll({ micros: 1_000 });
    poll.touch();
    // Field 19 of /proc/<pid>/task/<tid>/stat is the thread's nice value.
    const niceOf = (tid: string) => Number(fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16]);
    expect(await until(() => fs.readdirSync('/proc/self/task').some((tid) => niceOf(tid) === 19), 5_000)).toBe(true);
    expect(niceOf(String(process.pid))).toBe(os.getPriority());
  });

  it('never spins when turned off', async () => {
    poll = createBusyPoll({ micros: 0 });
    poll.touch();
    expect(poll.spinning).toBe(false);
    await sleep(10);
    expect(poll.spinning).toBe(false);
  });
});
