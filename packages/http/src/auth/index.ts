export type { AuthRefusal } from './gate.js';
export { AuthGate, createAuthGate, sendRefusal } from './gate.js';
export type { MutualTlsOptions } from './mtls.js';
export { mutualTlsAuthenticator, subjectOf } from './mtls.js';
export type { Authenticator, AuthFailure, AuthOptions, Principal, Verification } from './types.js';
export { bearerChallenge, isAuthFailure, principalOf } from './types.js';
