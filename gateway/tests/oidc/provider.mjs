// A real OpenID provider (the certified `oidc-provider` package) for the identity tests,
// on loopback. Usage: node provider.mjs <port> <keys-dir> <kid,kid,...>
// Each kid's private JWK is read from <keys-dir>/<kid>.json, or generated (RSA 2048) and
// saved there, so a restart with "new,old" rotates the signing key (the first one signs)
// while still publishing the old one. Prints "ready <issuer>" once listening.
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Provider from 'oidc-provider';

const [port, keysDir, kidList, gatewayPort] = process.argv.slice(2);
const issuer = `http://127.0.0.1:${port}`;

const keys = kidList.split(',').map((kid) => {
  const file = join(keysDir, `${kid}.json`);
  if (!existsSync(file)) {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
    writeFileSync(file, JSON.stringify(jwk));
  }
  return JSON.parse(readFileSync(file, 'utf8'));
});

const RESOURCE = 'urn:edgefn:api';

const loginClients = gatewayPort
  ? [
      {
        client_id: 'web',
        client_secret: 'web-secret-0123456789abcdef',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: [`http://127.0.0.1:${gatewayPort}/_fn/oidc/callback`],
        post_logout_redirect_uris: [`http://127.0.0.1:${gatewayPort}/`],
      },
    ]
  : [];

const provider = new Provider(issuer, {
  findAccount: (ctx, sub) => ({
    accountId: sub,
    claims: () => ({ sub, email: `${sub}@example.test` }),
  }),
  claims: { openid: ['sub'], email: ['email'] },
  jwks: { keys },
  clients: [
    {
      client_id: 'machine',
      client_secret: 'machine-secret-0123456789abcdef',
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
    },
    ...loginClients,
  ],
  scopes: ['openid', 'offline_access', 'email', 'read', 'write'],
  features: {
    devInteractions: { enabled: Boolean(gatewayPort) },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'read write',
        audience: RESOURCE,
        accessTokenTTL: 600,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
});

const server = provider.listen(Number(port), '127.0.0.1', () => {
  console.log(`ready ${issuer}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
