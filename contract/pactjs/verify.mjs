// Pact's own JavaScript verifier (pact_ffi through @pact-foundation/pact)
// verifying pact files against a running provider. pactjs_test.go writes
// the files with handoff and runs the provider.
//
//   PACT_FILES=a.json,b.json PROVIDER_URL=http://... STATE_URL=http://.../_state node verify.mjs
import pkg from '@pact-foundation/pact';

const { Verifier } = pkg;
const files = (process.env.PACT_FILES || '').split(',').filter(Boolean);
const providerBaseUrl = process.env.PROVIDER_URL;
const stateURL = process.env.STATE_URL;
if (files.length === 0 || !providerBaseUrl || !stateURL) {
  console.error('verify.mjs: set PACT_FILES, PROVIDER_URL and STATE_URL');
  process.exit(2);
}

const change = (state, action) => async (params) => {
  const res = await fetch(stateURL, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ state, params, action }),
  });
  if (!res.ok) throw new Error(`state ${state}: ${res.status}`);
  const text = await res.text();
  return text ? JSON.parse(text) : undefined;
};
const stateHandlers = {};
for (const s of (process.env.STATES || 'an order exists').split(',')) {
  stateHandlers[s] = { setup: change(s, 'setup'), teardown: change(s, 'teardown') };
}

try {
  await new Verifier({ provider: process.env.PROVIDER || 'orders', providerBaseUrl, pactUrls: files, stateHandlers, logLevel: 'warn' }).verifyProvider();
  console.log('verify.mjs: verified');
} catch (e) {
  console.error('verify.mjs: verification failed:', e.message || e);
  process.exit(1);
}
