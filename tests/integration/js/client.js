// kafkajs driven by tests/integration/kafkajs.py: one JSON argument in,
// one JSON line out. It creates the topic, produces `count` values, and
// consumes them back in a group from the earliest offset, with whatever
// TLS and SASL settings the test passes.
'use strict';

const fs = require('fs');
const { Kafka, logLevel } = require('kafkajs');

const args = JSON.parse(process.argv[2]);

function ssl() {
  if (!args.ssl) return undefined;
  const out = { rejectUnauthorized: true };
  if (args.ssl.ca) out.ca = [fs.readFileSync(args.ssl.ca, 'utf8')];
  if (args.ssl.cert) out.cert = fs.readFileSync(args.ssl.cert, 'utf8');
  if (args.ssl.key) out.key = fs.readFileSync(args.ssl.key, 'utf8');
  if (args.ssl.servername) out.servername = args.ssl.servername;
  return out;
}

// OAUTHBEARER takes a token provider, which JSON cannot carry: the test
// passes `{mechanism: 'oauthbearer', token}` and this wraps the token.
function sasl() {
  if (!args.sasl || args.sasl.mechanism !== 'oauthbearer') return args.sasl;
  const token = args.sasl.token;
  return { mechanism: 'oauthbearer', oauthBearerProvider: async () => ({ value: token }) };
}

function report(result, code) {
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(code);
}

async function main() {
  const kafka = new Kafka({
    clientId: 'sluice-kafkajs',
    brokers: [args.bootstrap],
    ssl: ssl(),
    sasl: sasl(),
    connectionTimeout: 5000,
    authenticationTimeout: 5000,
    logLevel: logLevel.NOTHING,
    retry: { retries: args.retries === undefined ? 3 : args.retries },
  });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: args.topic, numPartitions: 1 }] });
  await admin.disconnect();

  const producer = kafka.producer();
  await producer.connect();
  const values = [];
  for (let i = 0; i < args.count; i++) values.push(`kafkajs-${i}`);
  await producer.send({ topic: args.topic, acks: -1, messages: values.map((value) => ({ value })) });
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: args.group || `${args.topic}-group` });
  await consumer.connect();
  await consumer.subscribe({ topic: args.topic, fromBeginning: true });
  const consumed = [];
  await new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`consumed ${consumed.length} of ${args.count} in time`)),
      args.timeout_ms || 30000,
    );
    consumer
      .run({
        eachMessage: async ({ message }) => {
          consumed.push(message.value.toString());
          if (consumed.length >= args.count) {
            clearTimeout(timer);
            resolve();
          }
        },
      })
      .catch(reject);
  });
  await consumer.disconnect();
  report({ ok: true, produced: values, consumed }, 0);
}

main().catch((e) => report({ ok: false, error: e.name, message: String(e.message), type: e.type || null }, 1));
