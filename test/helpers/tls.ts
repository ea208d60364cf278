// A throwaway self-signed certificate for tests of https servers, made with Debian's openssl.
import { execa } from 'execa';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Writes a key and a certificate for 127.0.0.1 to a temporary folder removed at teardown; throws one line when openssl cannot. */
export async function selfSignedCert(t: { teardown(fn: () => void): void }): Promise<{ key: string; cert: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'clusterd-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  const openssl = await execa('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1'], {
    reject: false,
  });
  if (openssl.exitCode !== 0) throw new Error(`openssl could not make a certificate: ${openssl.failed ? openssl.shortMessage : openssl.stderr}`);
  return { key, cert };
}
