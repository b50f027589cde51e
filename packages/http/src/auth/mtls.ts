import { X509Certificate } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { PeerCertificate, TLSSocket } from 'node:tls';
import type { Authenticator, AuthFailure, Principal, Verification } from './types.js';
import { quoted } from './types.js';

export interface MutualTlsOptions {
  /**
   * The principal's id from the verified certificate. Default: its subject as RFC 4514-like text in
   * the certificate's order, e.g. `C=NL, O=Acme, CN=service-a`.
   */
  readonly principal?: (certificate: X509Certificate) => string | undefined;
  /** Scopes per principal id (or a function of the certificate). Default: none. */
  readonly scopes?: Readonly<Record<string, readonly string[]>> | ((id: string, certificate: X509Certificate) => readonly string[]);
}

const kVerified = Symbol('switchboard.mtls');
type Remembered = TLSSocket & { [kVerified]?: Verification };

const NO_CERTIFICATE: AuthFailure = { failure: 'missing', detail: 'No client certificate' };

/**
 * Mutual TLS: the client certificate that the TLS handshake verified against the server's `ca`
 * (`listen({ tls: { key, cert, ca, requestCert: true } })`) is the principal; its subject is the id.
 * A certificate the handshake did not verify (with `rejectUnauthorized: false`, so the client gets
 * a problem document instead of a failed handshake) is `invalid`; no certificate is `missing`.
 * The verdict is kept per connection: keep-alive requests cost nothing more.
 */
export function mutualTlsAuthenticator(options: MutualTlsOptions = {}): Authenticator {
  const scopes = options.scopes;
  const scopesOf =
    typeof scopes === 'function' ? scopes : (id: string): readonly string[] => (scopes === undefined ? [] : (scopes[id] ?? []));
  const verifySocket = (socket: TLSSocket): Verification => {
    const peer: PeerCertificate | undefined = socket.getPeerCertificate();
    if (peer === undefined || peer === null || peer.raw === undefined) return NO_CERTIFICATE;
    if (!socket.authorized) {
      return { failure: 'invalid', detail: `The client certificate is not trusted (${String(socket.authorizationError ?? 'unverified')})` };
    }
    const certificate = new X509Certificate(peer.raw);
    const id = options.principal === undefined ? subjectOf(certificate) : options.principal(certificate);
    if (id === undefined || id === '') return { failure: 'invalid', detail: 'The client certificate names no accepted principal' };
    const principal: Principal = {
      id,
      scopes: scopesOf(id, certificate),
      scheme: 'mutualTLS',
      claims: {
        subject: certificate.subject,
        issuer: certificate.issuer,
        serialNumber: certificate.serialNumber,
        validTo: certificate.validTo,
      },
    };
    return principal;
  };
  return {
    scheme: 'mutualTLS',
    verify(req: IncomingMessage): Verification {
      const socket = req.socket as Socket & Partial<TLSSocket>;
      if (socket.encrypted !== true || typeof socket.getPeerCertificate !== 'function') {
        return { failure: 'missing', detail: 'Not a TLS connection' };
      }
      const tls = socket as Remembered;
      const known = tls[kVerified];
      if (known !== undefined) return known;
      const verdict = verifySocket(tls);
      tls[kVerified] = verdict;
      return verdict;
    },
    // No HTTP authentication scheme is registered for client certificates; RFC 9110 wants a
    // challenge on every 401, so this one names what is expected.
    challenge: (realm) => `ClientCertificate realm=${quoted(realm)}`,
  };
}

/** `C=NL, O=Acme, CN=service-a`: the subject's attributes in the certificate's order. */
export function subjectOf(certificate: X509Certificate): string {
  return certificate.subject
    .split('\n')
    .filter((line) => line !== '')
    .join(', ');
}
