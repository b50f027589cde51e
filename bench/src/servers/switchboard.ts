import { createHttpService } from '@switchboard/http';
import { benchContract } from '../contract.js';

// Switchboard serving the same operation, input and output validated against the contract.
const service = createHttpService({
  contract: benchContract,
  handlers: { save: (input) => ({ saved: true, name: input.name }) },
  idempotency: false,
});
const { port } = await service.listen({ port: 0, host: '127.0.0.1' });
console.log(JSON.stringify({ port }));
process.on('SIGTERM', () => {
  void service.close({ timeoutMs: 1000 }).then(() => process.exit(0));
});
