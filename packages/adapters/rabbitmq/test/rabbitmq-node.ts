export { PrivateRabbitMqNode } from '@switchboard/testkit';
