import { defineContract, operation } from '@switchboard/core';
import { z } from 'zod';
import { benchContract } from '../contract.js';

/**
 * The async-HTTP benchmark's service: `save` (the sync benchmark's no-op operation) and `sleep`,
 * which waits `ms` and answers the monotonic time it finished, so a client in another process can
 * tell how long after the job ended it saw the completion.
 */
export const jobsBenchContract = defineContract({
  name: 'bench-jobs',
  operations: {
    save: benchContract.operations.save,
    sleep: operation({
      input: z.object({ ms: z.number().int().min(0).max(60_000) }),
      output: z.object({ finishedAt: z.number() }),
    }),
  },
});
