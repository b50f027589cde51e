// Starts the fauxqs SNS/SQS/S3 emulator on loopback for trying Switchboard's sns-sqs engine locally:
//   npm run aws-emulator                 # 127.0.0.1:4566
//   npm run aws-emulator -- --port 4570
// then, in another terminal: npm start -- --once --json --broker sns-sqs://127.0.0.1:4566
// It listens on 127.0.0.1 only (the fauxqs CLI listens on every interface) and keeps everything in
// memory: a restart starts empty. Ctrl-C stops it.
import { parseArgs } from 'node:util';
import { buildApp } from 'fauxqs';

const { values } = parseArgs({ options: { port: { type: 'string', default: '4566' }, region: { type: 'string', default: 'us-east-1' } } });
const app = buildApp({ logger: false, host: '127.0.0.1', defaultRegion: values.region });
await app.listen({ host: '127.0.0.1', port: Number(values.port) });
const { port } = app.server.address();
process.stdout.write(`fauxqs (SNS, SQS, S3) on http://127.0.0.1:${port}; broker URL: sns-sqs://127.0.0.1:${port}\n`);
const stop = () => void app.close().then(() => process.exit(0));
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
