import { randomUUID } from 'node:crypto';
import { implement, OperationError } from '@switchboard/core';
import { createHttpService } from '@switchboard/http';
import { onShutdown, readConfig } from './config.js';
import { serviceB } from './contracts.js';
import { announceReady } from './processes.js';

/**
 * ServiceB: owns saving and analysing names. Its handlers are written once; the same object is
 * served over HTTP (sync and as jobs) and through the broker.
 */
const config = readConfig(4002);
const saved = new Map<string, string>();

export const handlers = implement(serviceB, {
  save: ({ name }) => {
    if (/^\d+$/.test(name)) throw new OperationError('NameRejected', { detail: 'a name needs letters', data: { reason: 'digits only' } });
    const id = saved.get(name) ?? randomUUID();
    saved.set(name, id);
    return { saved: true, id };
  },
  analyze: async ({ name, workMs }, ctx) => {
    const steps = 10;
    for (let step = 1; step <= steps; step++) {
      await new Promise((resolve) => setTimeout(resolve, workMs / steps));
      ctx.signal.throwIfAborted();
      ctx.progress({ percent: step * 10, message: `step ${step} of ${steps}` });
    }
    const letters = name.replace(/[^\p{L}]/gu, '').toLowerCase();
    return {
      name,
      letters: letters.length,
      vowels: (letters.match(/[aeiouy]/g) ?? []).length,
      palindrome: letters.length > 0 && letters === [...letters].reverse().join(''),
    };
  },
});

const http = createHttpService({ contract: serviceB, handlers });
const { url } = await http.listen({ port: config.port, host: config.host });
announceReady('service-b', url);
onShutdown(async () => {
  await http.close({ timeoutMs: 5000 });
});
