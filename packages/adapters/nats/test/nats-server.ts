export { PrivateNatsServer } from '@switchboard/testkit';
