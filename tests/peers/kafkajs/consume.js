#!/usr/bin/env node
// consume.js: reads a topic from its beginning the way a Node.js service downstream of
// Sluice would -- a kafkajs consumer in a consumer group -- and prints every message as one
// JSON line, so Sluice's Kafka sink is checked by a real, widely used client rather than
// only by librdkafka (kcat).
//
//   node consume.js --brokers H:P[,H:P...] --topic T --count N [--timeout-ms 30000]
//
// Output, one line per message, in the order kafkajs delivers them:
//   {"partition":0,"offset":"12","timestamp":"1704067210000","key":"17:north",
//    "value":"{...}","headers":{"sluice.pipeline":"kt",...}}
// (key null for a null key; strings as UTF-8.) Exits 0 once N messages were read, 1 when
// the timeout passes first (the messages read so far are printed).
'use strict';

const { Kafka, CompressionTypes, CompressionCodecs, logLevel } = require('kafkajs');

function usage(msg) {
  if (msg) console.error(`consume.js: ${msg}`);
  console.error('usage: node consume.js --brokers H:P[,H:P] --topic T --count N [--timeout-ms MS]');
  process.exit(2);
}

function parseArgs(argv) {
  const a = { timeoutMs: 30000 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${flag} needs a value`);
      return argv[++i];
    };
    switch (flag) {
      case '--brokers': a.brokers = value().split(',').filter(Boolean); break;
      case '--topic': a.topic = value(); break;
      case '--count': a.count = Number(value()); break;
      case '--timeout-ms': a.timeoutMs = Number(value()); break;
      default: usage(`unknown argument ${flag}`);
    }
  }
  if (!a.brokers || !a.topic || !(a.count >= 0)) usage('--brokers, --topic and --count are required');
  return a;
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  try {
    const SnappyCodec = require('kafkajs-snappy');
    CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec;
  } catch (e) {
    // snappy stays unavailable; a snappy batch then fails the run.
  }
  const kafka = new Kafka({ clientId: 'sluice-test-consumer', brokers: a.brokers, logLevel: logLevel.ERROR });
  const consumer = kafka.consumer({ groupId: `sluice-test-${process.pid}`, maxWaitTimeInMs: 100 });
  let seen = 0;
  let done;
  const finished = new Promise((resolve) => { done = resolve; });
  const timer = setTimeout(() => done(false), a.timeoutMs);
  await consumer.connect();
  await consumer.subscribe({ topic: a.topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      const headers = {};
      for (const [k, v] of Object.entries(message.headers || {})) headers[k] = v === null ? null : v.toString('utf8');
      process.stdout.write(JSON.stringify({
        partition,
        offset: message.offset,
        timestamp: message.timestamp,
        key: message.key === null ? null : message.key.toString('utf8'),
        value: message.value === null ? null : message.value.toString('utf8'),
        headers,
      }) + '\n');
      if (++seen >= a.count) done(true);
    },
  });
  if (a.count === 0) done(true);
  const ok = await finished;
  clearTimeout(timer);
  await consumer.disconnect();
  if (!ok) {
    console.error(`consume.js: ${seen} of ${a.count} messages before the timeout`);
    process.exit(1);
  }
}

main().catch((e) => {
  console.error(`consume.js: ${e.stack || e}`);
  process.exit(1);
});
