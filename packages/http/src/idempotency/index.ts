export { requestHash } from './hash.js';
