#!/usr/bin/env node
// produce.js: sends NDJSON lines to Kafka the way a Node.js point-of-sale service
// would -- a kafkajs producer, acks -1 (all in-sync replicas), keyed messages with
// headers, sent in batches -- so Sluice's tests read records written by a real,
// widely used client rather than only by librdkafka.
//
//   node produce.js --brokers H:P[,H:P...] --topic T --file events.ndjson
//                   [--key-field product_id] [--codec none|gzip|snappy]
//                   [--header k=v ...] [--partition N] [--batch 500]
//
// Each non-empty line is one message value, byte for byte. The key is the field's
// value: a string as-is, anything else as its JSON text (17, true). Partitioning is
// kafkajs' DefaultPartitioner (murmur2 of the key, like the Java client) unless
// --partition is given. Exit code 0 only when every message was acknowledged;
// the summary line goes to stdout.
'use strict';

const fs = require('fs');
const readline = require('readline');
const { Kafka, CompressionTypes, CompressionCodecs, Partitioners, logLevel } = require('kafkajs');

// Messages per producer.send(): one Produce request per partition leader. 500 is
// what a service flushing a small in-memory queue typically sends; far below the
// mock's 5 MiB per-partition log, so nothing is evicted mid-test.
const DEFAULT_BATCH_MESSAGES = 500;

function usage(msg) {
  if (msg) console.error(`produce.js: ${msg}`);
  console.error('usage: node produce.js --brokers H:P[,H:P] --topic T --file F [--key-field NAME] ' +
    '[--codec none|gzip|snappy] [--header k=v ...] [--partition N] [--batch N]');
  process.exit(2);
}

function parseArgs(argv) {
  const a = { headers: {}, codec: 'none', batch: DEFAULT_BATCH_MESSAGES };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) usage(`${flag} needs a value`);
      return argv[++i];
    };
    switch (flag) {
      case '--brokers': a.brokers = value().split(',').filter(Boolean); break;
      case '--topic': a.topic = value(); break;
      case '--file': a.file = value(); break;
      case '--key-field': a.keyField = value(); break;
      case '--codec': a.codec = value(); break;
      case '--partition': a.partition = Number(value()); break;
      case '--batch': a.batch = Number(value()); break;
      case '--header': {
        const kv = value();
        const eq = kv.indexOf('=');
        if (eq <= 0) usage(`--header wants name=value: ${kv}`);
        a.headers[kv.slice(0, eq)] = kv.slice(eq + 1);
        break;
      }
      case '-h': case '--help': usage(); break;
      default: usage(`unknown argument: ${flag}`);
    }
  }
  if (!a.brokers || !a.brokers.length || !a.topic || !a.file) usage('--brokers, --topic and --file are required');
  if (a.partition !== undefined && !(Number.isInteger(a.partition) && a.partition >= 0)) usage('--partition must be an integer >= 0');
  if (!(Number.isInteger(a.batch) && a.batch >= 1)) usage('--batch must be an integer >= 1');
  return a;
}

// kafkajs ships gzip only. snappy comes from the pure-JS kafkajs-snappy plugin;
// lz4 and zstd plugins (kafkajs-lz4, @kafkajs/zstd) are native addons built by
// node-gyp, which needs Node headers from the internet, so they are not used.
function compressionFor(codec) {
  switch (codec) {
    case 'none': return CompressionTypes.None;
    case 'gzip': return CompressionTypes.GZIP;
    case 'snappy':
      CompressionCodecs[CompressionTypes.Snappy] = require('kafkajs-snappy');
      return CompressionTypes.Snappy;
    default:
      usage(`codec ${codec} is not available with kafkajs here (none, gzip, snappy)`);
  }
}

function keyOf(line, field, lineNo) {
  let obj;
  try {
    obj = JSON.parse(line);
  } catch (e) {
    throw new Error(`line ${lineNo}: not JSON (${e.message})`);
  }
  if (obj === null || typeof obj !== 'object' || !(field in obj)) return null;
  const v = obj[field];
  return typeof v === 'string' ? v : JSON.stringify(v);
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const compression = compressionFor(a.codec);
  const kafka = new Kafka({
    clientId: 'sluice-pos-peer',
    brokers: a.brokers,
    logLevel: logLevel.WARN,
    retry: { retries: 5, initialRetryTime: 100 },
  });
  const producer = kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
  });

  let read = 0;
  let sent = 0;
  let withoutKey = 0;
  const started = process.hrtime.bigint();
  await producer.connect();
  try {
    const send = async (messages) => {
      await producer.send({ topic: a.topic, acks: -1, compression, messages });
      sent += messages.length;
    };
    const lines = readline.createInterface({ input: fs.createReadStream(a.file), crlfDelay: Infinity });
    let batch = [];
    for await (const line of lines) {
      if (line.length === 0) continue;
      read++;
      const message = { value: line };
      if (a.keyField) {
        const key = keyOf(line, a.keyField, read);
        if (key === null) withoutKey++;
        else message.key = key;
      }
      if (Object.keys(a.headers).length) message.headers = { ...a.headers };
      if (a.partition !== undefined) message.partition = a.partition;
      batch.push(message);
      if (batch.length >= a.batch) {
        await send(batch);
        batch = [];
      }
    }
    if (batch.length) await send(batch);
  } finally {
    await producer.disconnect();
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  console.log(`sent ${sent} read ${read} without_key ${withoutKey} seconds ${seconds.toFixed(3)}`);
  return sent === read ? 0 : 1;
}

main().then(
  (code) => { process.exitCode = code; },
  (err) => {
    console.error(`produce.js: ${err.message}`);
    process.exitCode = 1;
  },
);
