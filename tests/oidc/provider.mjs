// A real OpenID Connect provider (panva's oidc-provider) for the sign-in tests; not part of placesense.
// Settings come from the environment (set by tests/oidc/conftest.py):
//   OIDC_PORT, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URI, OIDC_JWKS (a file with the signing keys),
//   OIDC_ACCOUNTS (a JSON file: {"alice": {"name": "Alice Jones", "groups": ["care-north"]}, ...}).
// The login step takes the account from the X-Login-As request header, so a test chooses who signs in; the
// consent step grants what was asked. Everything else (PKCE, codes, ID tokens, JWKS) is the library's own.
import http from 'node:http';
import fs from 'node:fs';
import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_PORT);
const issuer = `http://127.0.0.1:${port}`;
const accounts = JSON.parse(fs.readFileSync(process.env.OIDC_ACCOUNTS, 'utf8'));

const provider = new Provider(issuer, {
  clients: [{
    client_id: process.env.OIDC_CLIENT_ID,
    client_secret: process.env.OIDC_CLIENT_SECRET,
    redirect_uris: [process.env.OIDC_REDIRECT_URI],
    response_types: ['code'],
    grant_types: ['authorization_code'],
  }],
  jwks: JSON.parse(fs.readFileSync(process.env.OIDC_JWKS, 'utf8')),
  pkce: { required: () => true },
  // Entra ID sends the groups claim whenever the app registration asks for it; here it comes with 'profile'.
  claims: { openid: ['sub'], profile: ['name', 'groups', 'locale'], email: ['email'] },
  conformIdTokenClaims: false, // put name and groups in the ID token, as Entra ID does with a groups claim
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  findAccount: (ctx, sub) => accounts[sub] && {
    accountId: sub,
    claims: () => ({ sub, name: accounts[sub].name, email: `${sub}@council.example`, groups: accounts[sub].groups,
      locale: accounts[sub].locale }),
  },
});
provider.proxy = false;

const callback = provider.callback();
http.createServer(async (req, res) => {
  if (!req.url.startsWith('/interaction/')) return callback(req, res);
  try {
    const details = await provider.interactionDetails(req, res);
    if (details.prompt.name === 'login') {
      const who = req.headers['x-login-as'];
      if (!accounts[who]) { res.statusCode = 403; return res.end('unknown account'); }
      return await provider.interactionFinished(req, res, { login: { accountId: who } }, { mergeWithLastSubmission: false });
    }
    const grant = new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    grant.addOIDCScope(details.params.scope);
    const grantId = await grant.save();
    return await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  } catch (err) {
    res.statusCode = 500;
    res.end(String(err));
  }
}).listen(port, '127.0.0.1', () => console.log(`oidc-provider listening on ${issuer}`));
