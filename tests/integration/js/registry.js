// @kafkajs/confluent-schema-registry driven by
// tests/integration/test_schema_registry.py: one JSON argument in, one JSON
// line out. For each schema type it registers a schema under
// `<topic>-<type>-value`, encodes `count` values with it, produces them with
// kafkajs, consumes them back and decodes them through the registry.
'use strict';

const { Kafka, logLevel } = require('kafkajs');
const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry');

const args = JSON.parse(process.argv[2]);

const SCHEMAS = {
  avro: {
    type: SchemaType.AVRO,
    schema: JSON.stringify({
      type: 'record', name: 'Reading', namespace: 'io.sluice.js',
      fields: [{ name: 'sensor', type: 'string' }, { name: 'value', type: 'double' }],
    }),
  },
  json: {
    type: SchemaType.JSON,
    schema: JSON.stringify({
      type: 'object',
      properties: { sensor: { type: 'string' }, value: { type: 'number' } },
      required: ['sensor', 'value'],
    }),
  },
  protobuf: {
    type: SchemaType.PROTOBUF,
    schema: 'syntax = "proto3";\npackage io.sluice.js;\nmessage Reading {\n  string sensor = 1;\n  double value = 2;\n}\n',
  },
};

function report(result, code) {
  process.stdout.write(JSON.stringify(result) + '\n');
  process.exit(code);
}

async function roundTrip(kafka, registry, kind) {
  const topic = `${args.topic}-${kind}`;
  const subject = `${topic}-value`;
  const { id } = await registry.register(SCHEMAS[kind], { subject });
  const values = [];
  for (let i = 0; i < args.count; i++) values.push({ sensor: `s${i}`, value: i + 0.5 });

  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
  await admin.disconnect();

  const producer = kafka.producer();
  await producer.connect();
  const messages = [];
  for (const v of values) messages.push({ value: await registry.encode(id, v) });
  await producer.send({ topic, acks: -1, messages });
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: `${topic}-group` });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const decoded = [];
  const ids = new Set();
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${kind}: consumed ${decoded.length} of ${values.length}`)), args.timeout_ms);
    consumer.run({
      eachMessage: async ({ message }) => {
        ids.add(message.value.readInt32BE(1));
        const value = await registry.decode(message.value);
        decoded.push({ sensor: value.sensor, value: value.value });
        if (decoded.length >= values.length) {
          clearTimeout(timer);
          resolve();
        }
      },
    }).catch(reject);
  });
  await consumer.disconnect();
  const latest = await registry.getLatestSchemaId(subject);
  return { id, latest, ids: [...ids], values, decoded };
}

async function main() {
  const kafka = new Kafka({
    clientId: 'sluice-registry-js',
    brokers: [args.bootstrap],
    logLevel: logLevel.NOTHING,
  });
  const registry = new SchemaRegistry({ host: args.registry });
  const out = { ok: true };
  for (const kind of ['avro', 'json', 'protobuf']) out[kind] = await roundTrip(kafka, registry, kind);
  report(out, 0);
}

main().catch((e) => report({ ok: false, error: e.name, message: e.message }, 1));
