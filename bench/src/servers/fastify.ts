import Fastify from 'fastify';

// The peer baseline: Fastify with the same route, validating the body with its JSON schema.
const app = Fastify({ logger: false, keepAliveTimeout: 60_000 });
app.post(
  '/ops/save',
  {
    schema: {
      body: {
        type: 'object',
        required: ['name', 'email', 'tags', 'age'],
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 100 },
          email: { type: 'string', maxLength: 200 },
          tags: { type: 'array', items: { type: 'string' }, maxItems: 10 },
          age: { type: 'integer', minimum: 0 },
        },
      },
      response: {
        200: { type: 'object', required: ['saved', 'name'], properties: { saved: { type: 'boolean' }, name: { type: 'string' } } },
      },
    },
  },
  async (request) => ({ saved: true, name: (request.body as { name: string }).name }),
);
const address = await app.listen({ port: 0, host: '127.0.0.1' });
console.log(JSON.stringify({ port: Number(new URL(address).port) }));
process.on('SIGTERM', () => {
  void app.close().then(() => process.exit(0));
});
