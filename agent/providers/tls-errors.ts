// TLS verification failures (OpenSSL's verify codes, as Node reports them on the socket error) get their own
// stable code, TLS_VERIFY_FAILED, instead of disappearing into UNAVAILABLE: a missing or wrong private CA is
// a configuration fix, not an outage to wait out, and the metric and the log line say which.

const UNTRUSTED = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'INVALID_CA',
  'CERT_SIGNATURE_FAILURE',
]);
const WRONG_NAME = new Set(['ERR_TLS_CERT_ALTNAME_INVALID', 'HOSTNAME_MISMATCH', 'IP_ADDRESS_MISMATCH']);
const OUT_OF_DATE = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
]);

/**
 * Why a TLS verification failed and what fixes it, or undefined when `code` is no verification failure.
 * `trustFix` says how this backend is given a CA.
 */
export function tlsVerifyFailure(code: string, trustFix: string): string | undefined {
  if (UNTRUSTED.has(code))
    return `TLS verification failed (${code}): the server's certificate is not signed by a CA the agent trusts; ${trustFix}`;
  if (WRONG_NAME.has(code))
    return `TLS verification failed (${code}): the server's certificate does not name the address the agent dialled; use an address among its names`;
  if (OUT_OF_DATE.has(code))
    return `TLS verification failed (${code}): the server's certificate is outside its validity period`;
  return undefined;
}
