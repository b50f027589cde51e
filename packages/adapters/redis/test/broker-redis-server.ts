export { type PrivateRedis, startPrivateRedis } from '@switchboard/testkit';
