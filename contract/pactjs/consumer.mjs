// A consumer test written with Pact's own JavaScript library: it writes a
// V4 pact (HTTP and an asynchronous message) into $PACT_DIR, which
// pactjs_test.go then verifies with handoff's verifier.
import pkg from '@pact-foundation/pact';

const { PactV4, MatchersV3 } = pkg;
const { integer, decimal, regex, string, eachLike, datetime, like } = MatchersV3;

const dir = process.env.PACT_DIR;
if (!dir) {
  console.error('consumer.mjs: set PACT_DIR');
  process.exit(2);
}

const pact = new PactV4({ consumer: 'jsweb', provider: 'orders', dir, logLevel: 'warn' });

await pact
  .addInteraction()
  .given('an order exists', { status: 'paid' })
  .uponReceiving('a request for an order from js')
  .withRequest('GET', '/orders/4711', (b) => b.headers({ Accept: 'application/json' }))
  .willRespondWith(200, (b) =>
    b.headers({ 'Content-Type': regex('application/json.*', 'application/json') }).jsonBody({
      id: integer(4711),
      status: regex('pending|paid|shipped', 'paid'),
      total: decimal(99.5),
      items: eachLike({ sku: string('A-1'), qty: integer(2) }),
    }),
  )
  .executeTest(async (mock) => {
    const res = await fetch(`${mock.url}/orders/4711`, { headers: { Accept: 'application/json' } });
    if (res.status !== 200) throw new Error(`status ${res.status}`);
    const order = await res.json();
    if (order.status !== 'paid') throw new Error(`order ${JSON.stringify(order)}`);
  });

await pact
  .addAsynchronousInteraction()
  .given('an order exists')
  .expectsToReceive('an order placed event from js', (b) =>
    b
      .withJSONContent({
        order: integer(4711),
        total: like(12.5),
        placedAt: datetime("yyyy-MM-dd'T'HH:mm:ssXXX", '2024-05-01T10:00:00Z'),
      })
      .withMetadata({ type: 'order.placed', contentType: 'application/json' }),
  )
  .executeTest(async (m) => {
    if (!m) throw new Error('no message');
  });

console.log('consumer.mjs: pact written to', dir);
