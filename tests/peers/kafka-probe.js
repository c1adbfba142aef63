#!/usr/bin/env node
// kafka-probe.js: speaks the Kafka wire protocol by hand (no dependencies) to check
// what a broker -- here sluice-kafka-mock, i.e. librdkafka's mock cluster -- really
// answers. It is the evidence behind the facts in tools/kafka-mock/README.md, and a
// reference for Sluice's own Kafka client: every request is encoded version by
// version exactly as the protocol spec lays it out.
//
//   node kafka-probe.js versions    --broker H:P [--topic T]
//   node kafka-probe.js apiversions --broker H:P [--version 0..3]
//   node kafka-probe.js metadata    --broker H:P [--version V] [--topic T]
//   node kafka-probe.js offsets     --broker H:P --topic T [--partition P] [--version V]
//   node kafka-probe.js fetch       --broker H:P --topic T [--partition P] [--offset O]
//                                   [--version V] [--max-bytes N] [--max-wait MS] [--records]
//   node kafka-probe.js produce     --broker H:P --topic T [--partition P] [--version V]
//                                   [--acks A] [--count N]
//
// `--broker` must be the partition's leader for offsets/fetch/produce (see `metadata`).
// `versions` sends every version of each API on a fresh connection, so it appends one
// small record per accepted Produce version (and Metadata creates the topic if missing).
// Exit code 0 when the probe ran, 1 on a connection or decode failure, 2 on usage.
'use strict';

const net = require('net');
const zlib = require('zlib');

// ---------------------------------------------------------------------------
// Encoding

class Writer {
  constructor() { this.parts = []; }
  i8(v) { const b = Buffer.alloc(1); b.writeInt8(v); this.parts.push(b); return this; }
  i16(v) { const b = Buffer.alloc(2); b.writeInt16BE(v); this.parts.push(b); return this; }
  i32(v) { const b = Buffer.alloc(4); b.writeInt32BE(v); this.parts.push(b); return this; }
  u32(v) { const b = Buffer.alloc(4); b.writeUInt32BE(v >>> 0); this.parts.push(b); return this; }
  i64(v) { const b = Buffer.alloc(8); b.writeBigInt64BE(BigInt(v)); this.parts.push(b); return this; }
  str(s) {  // STRING / NULLABLE_STRING (int16 length)
    if (s === null) return this.i16(-1);
    const b = Buffer.from(s, 'utf8'); this.i16(b.length); this.parts.push(b); return this;
  }
  bytes(buf) { this.i32(buf.length); this.parts.push(buf); return this; }
  raw(buf) { this.parts.push(buf); return this; }
  uvarint(v) {
    const out = [];
    while (v > 0x7f) { out.push((v & 0x7f) | 0x80); v >>>= 7; }
    out.push(v);
    this.parts.push(Buffer.from(out)); return this;
  }
  varint(v) { return this.uvarint(((v << 1) ^ (v >> 31)) >>> 0); }  // zigzag, 32-bit
  varlong(v) {  // zigzag, 64-bit, via BigInt
    let z = (BigInt(v) << 1n) ^ (BigInt(v) >> 63n);
    z &= (1n << 64n) - 1n;
    const out = [];
    while (z > 0x7fn) { out.push(Number(z & 0x7fn) | 0x80); z >>= 7n; }
    out.push(Number(z));
    this.parts.push(Buffer.from(out)); return this;
  }
  compactStr(s) { const b = Buffer.from(s, 'utf8'); this.uvarint(b.length + 1); this.parts.push(b); return this; }
  array(items, fn) { this.i32(items.length); for (const it of items) fn(this, it); return this; }
  build() { return Buffer.concat(this.parts); }
}

class Reader {
  constructor(buf) { this.buf = buf; this.pos = 0; }
  need(n) { if (this.pos + n > this.buf.length) throw new Error(`short response: need ${n} bytes at ${this.pos} of ${this.buf.length}`); }
  i8() { this.need(1); const v = this.buf.readInt8(this.pos); this.pos += 1; return v; }
  i16() { this.need(2); const v = this.buf.readInt16BE(this.pos); this.pos += 2; return v; }
  i32() { this.need(4); const v = this.buf.readInt32BE(this.pos); this.pos += 4; return v; }
  u32() { this.need(4); const v = this.buf.readUInt32BE(this.pos); this.pos += 4; return v; }
  i64() { this.need(8); const v = this.buf.readBigInt64BE(this.pos); this.pos += 8; return v; }
  bool() { return this.i8() !== 0; }
  str() { const n = this.i16(); if (n < 0) return null; this.need(n); const s = this.buf.toString('utf8', this.pos, this.pos + n); this.pos += n; return s; }
  bytes() { const n = this.i32(); if (n < 0) return null; this.need(n); const b = this.buf.subarray(this.pos, this.pos + n); this.pos += n; return b; }
  uvarint() { let v = 0, shift = 0, b; do { this.need(1); b = this.buf[this.pos++]; v |= (b & 0x7f) << shift; shift += 7; } while (b & 0x80); return v >>> 0; }
  varint() { const z = this.uvarint(); return (z >>> 1) ^ -(z & 1); }
  varlong() {
    let z = 0n, shift = 0n, b;
    do { this.need(1); b = this.buf[this.pos++]; z |= BigInt(b & 0x7f) << shift; shift += 7n; } while (b & 0x80);
    return (z >> 1n) ^ -(z & 1n);
  }
  array(fn) { const n = this.i32(); if (n < 0) return null; const out = []; for (let i = 0; i < n; i++) out.push(fn(this)); return out; }
  left() { return this.buf.length - this.pos; }
}

// CRC-32C (Castagnoli), as record batches v2 use.
const CRC32C_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();
function crc32c(buf) {
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = CRC32C_TABLE[(c ^ buf[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const API = { Produce: 0, Fetch: 1, ListOffsets: 2, Metadata: 3, ApiVersions: 18 };
const API_NAME = Object.fromEntries(Object.entries(API).map(([k, v]) => [v, k]));
const ERROR_NAME = {
  0: 'NONE', 1: 'OFFSET_OUT_OF_RANGE', 2: 'CORRUPT_MESSAGE', 3: 'UNKNOWN_TOPIC_OR_PARTITION',
  5: 'LEADER_NOT_AVAILABLE', 6: 'NOT_LEADER_OR_FOLLOWER', 7: 'REQUEST_TIMED_OUT',
  10: 'MESSAGE_TOO_LARGE', 35: 'UNSUPPORTED_VERSION',
};
const errName = (e) => `${e}${ERROR_NAME[e] ? ' ' + ERROR_NAME[e] : ''}`;
const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'];

// ---------------------------------------------------------------------------
// Connection: one request in flight at a time.

class Conn {
  constructor(hostport) {
    const i = hostport.lastIndexOf(':');
    this.host = hostport.slice(0, i);
    this.port = Number(hostport.slice(i + 1));
    this.correlation = 1;
  }
  open() {
    return new Promise((resolve, reject) => {
      this.sock = net.connect(this.port, this.host, () => resolve());
      this.sock.once('error', reject);
      this.buf = Buffer.alloc(0);
      this.closed = false;
      this.waiter = null;
      this.sock.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this.pump(); });
      this.sock.on('close', () => { this.closed = true; this.pump(); });
      this.sock.on('error', () => {});
    });
  }
  pump() {
    if (!this.waiter) return;
    if (this.buf.length >= 4) {
      const n = this.buf.readInt32BE(0);
      if (this.buf.length >= 4 + n) {
        const frame = this.buf.subarray(4, 4 + n);
        this.buf = this.buf.subarray(4 + n);
        const w = this.waiter; this.waiter = null; clearTimeout(w.timer);
        w.resolve(frame);
        return;
      }
    }
    if (this.closed) { const w = this.waiter; this.waiter = null; clearTimeout(w.timer); w.resolve(null); }
  }
  // Sends one request; resolves to a Reader over the response body (after the
  // correlation id and, for flexible responses, the header tags), or null when
  // the broker closed the connection, or 'timeout'.
  request(apiKey, version, body, { flexibleHeader = false, timeoutMs = 5000 } = {}) {
    const corr = this.correlation++;
    const h = new Writer().i16(apiKey).i16(version).i32(corr).str('kafka-probe');
    if (flexibleHeader) h.uvarint(0);  // request header v2: empty tagged fields
    const payload = Buffer.concat([h.build(), body]);
    const frame = new Writer().i32(payload.length).raw(payload).build();
    return new Promise((resolve) => {
      this.waiter = {
        resolve: (f) => {
          if (f === null) return resolve(null);
          const r = new Reader(f);
          const got = r.i32();
          if (got !== corr) throw new Error(`correlation id ${got}, expected ${corr}`);
          resolve(r);
        },
        timer: setTimeout(() => { this.waiter = null; resolve('timeout'); }, timeoutMs),
      };
      if (!this.closed) this.sock.write(frame);
      this.pump();
    });
  }
  close() { if (this.sock) this.sock.destroy(); }
}

// ---------------------------------------------------------------------------
// Requests and responses, version by version.

function encodeApiVersions(v) {
  if (v < 3) return Buffer.alloc(0);
  return new Writer().compactStr('kafka-probe').compactStr('1.0').uvarint(0).build();
}
function decodeApiVersions(r, v) {
  const out = { error: r.i16(), apis: [] };
  // ApiVersions responses to v3 are flexible (compact array); the mock answers a
  // request version it does not support with error 35 and, like Kafka, expects the
  // client to retry at a lower version.
  const flex = v >= 3;
  const n = flex ? r.uvarint() - 1 : r.i32();
  for (let i = 0; i < n; i++) {
    const a = { key: r.i16(), min: r.i16(), max: r.i16() };
    if (flex) r.uvarint();
    out.apis.push(a);
  }
  if (v >= 1) out.throttle = r.i32();
  out.trailing = r.left();
  return out;
}

function encodeMetadata(v, topics) {
  const w = new Writer();
  if (topics === null) { if (v === 0) w.i32(0); else w.i32(-1); } else w.array(topics, (w, t) => w.str(t));
  if (v >= 4) w.i8(0);  // allow_auto_topic_creation = false
  if (v >= 8) w.i8(0).i8(0);
  return w.build();
}
function decodeMetadata(r, v) {
  const out = {};
  if (v >= 3) out.throttle = r.i32();
  out.brokers = r.array((r) => {
    const b = { id: r.i32(), host: r.str(), port: r.i32() };
    if (v >= 1) b.rack = r.str();
    return b;
  });
  if (v >= 2) out.cluster_id = r.str();
  if (v >= 1) out.controller = r.i32();
  out.topics = r.array((r) => {
    const t = { error: r.i16(), name: r.str() };
    if (v >= 1) t.internal = r.bool();
    t.partitions = r.array((r) => {
      const p = { error: r.i16(), id: r.i32(), leader: r.i32() };
      if (v >= 7) p.leader_epoch = r.i32();
      p.replicas = r.array((r) => r.i32());
      p.isr = r.array((r) => r.i32());
      if (v >= 5) p.offline = r.array((r) => r.i32());
      return p;
    });
    if (v >= 8) t.authorized_ops = r.i32();
    return t;
  });
  if (v >= 8) out.cluster_authorized_ops = r.i32();
  out.trailing = r.left();
  return out;
}

// timestamp -2 = earliest, -1 = latest
function encodeListOffsets(v, topic, partitions, timestamp) {
  const w = new Writer().i32(-1);
  if (v >= 2) w.i8(0);
  w.array([topic], (w, t) => {
    w.str(t);
    w.array(partitions, (w, p) => {
      w.i32(p);
      if (v >= 4) w.i32(-1);
      w.i64(timestamp);
      if (v === 0) w.i32(1);
    });
  });
  return w.build();
}
function decodeListOffsets(r, v) {
  const out = {};
  if (v >= 2) out.throttle = r.i32();
  out.topics = r.array((r) => ({
    name: r.str(),
    partitions: r.array((r) => {
      const p = { partition: r.i32(), error: r.i16() };
      if (v === 0) p.offsets = r.array((r) => r.i64());
      else { p.timestamp = r.i64(); p.offset = r.i64(); }
      if (v >= 4) p.leader_epoch = r.i32();
      return p;
    }),
  }));
  out.trailing = r.left();
  return out;
}

function encodeFetch(v, topic, partition, offset, maxBytes, maxWaitMs) {
  const w = new Writer().i32(-1).i32(maxWaitMs).i32(1);
  if (v >= 3) w.i32(maxBytes);
  if (v >= 4) w.i8(0);
  if (v >= 7) w.i32(0).i32(-1);  // no fetch session
  w.array([topic], (w, t) => {
    w.str(t);
    w.array([partition], (w, p) => {
      w.i32(p);
      if (v >= 9) w.i32(-1);
      w.i64(offset);
      if (v >= 5) w.i64(-1);
      w.i32(maxBytes);
    });
  });
  if (v >= 7) w.i32(0);
  if (v >= 11) w.str('');
  return w.build();
}
function decodeFetch(r, v) {
  const out = {};
  if (v >= 1) out.throttle = r.i32();
  if (v >= 7) { out.error = r.i16(); out.session = r.i32(); }
  out.topics = r.array((r) => ({
    name: r.str(),
    partitions: r.array((r) => {
      const p = { partition: r.i32(), error: r.i16(), high_watermark: r.i64() };
      if (v >= 4) p.last_stable_offset = r.i64();
      if (v >= 5) p.log_start_offset = r.i64();
      if (v >= 4) p.aborted = r.array((r) => ({ pid: r.i64(), first: r.i64() }));
      if (v >= 11) p.preferred_read_replica = r.i32();
      p.records = r.bytes();
      return p;
    }),
  }));
  out.trailing = r.left();
  return out;
}

// Walks the record batches in a Fetch response's records field.
function decodeBatches(buf) {
  const batches = [];
  let pos = 0;
  while (buf && pos + 12 <= buf.length) {
    const baseOffset = buf.readBigInt64BE(pos);
    const length = buf.readInt32BE(pos + 8);
    if (pos + 12 + length > buf.length) { batches.push({ partial: true, baseOffset, bytes: buf.length - pos }); break; }
    const b = buf.subarray(pos, pos + 12 + length);
    const magic = b.readInt8(16);
    const batch = { baseOffset, bytes: b.length, magic };
    if (magic === 2) {
      const attrs = b.readInt16BE(21);
      Object.assign(batch, {
        crc_ok: b.readUInt32BE(17) === crc32c(b.subarray(21)),
        codec: CODECS[attrs & 7] || `codec${attrs & 7}`,
        timestamp_type: attrs & 8 ? 'LogAppendTime' : 'CreateTime',
        transactional: !!(attrs & 16), control: !!(attrs & 32),
        lastOffsetDelta: b.readInt32BE(23),
        firstTimestamp: b.readBigInt64BE(27), maxTimestamp: b.readBigInt64BE(35),
        producerId: b.readBigInt64BE(43), records: b.readInt32BE(57),
        body: b.subarray(61),
      });
      // The first bytes of a compressed payload tell its framing apart: snappy
      // from the Java client carries the xerial header 82 53 4e 41 50 50 59 00
      // (librdkafka and kafkajs-snappy write raw snappy), lz4 the frame magic
      // 04 22 4d 18, zstd 28 b5 2f fd, gzip 1f 8b.
      if ((attrs & 7) !== 0) batch.payload_head = b.subarray(61, 69).toString('hex');
    }
    batches.push(batch);
    pos += 12 + length;
  }
  return batches;
}

// Decodes the records of an uncompressed or gzip batch (what node can decompress).
function decodeRecords(batch) {
  let body = batch.body;
  if (batch.codec === 'gzip') body = zlib.gunzipSync(body);
  else if (batch.codec !== 'none') return null;
  const r = new Reader(body);
  const out = [];
  for (let i = 0; i < batch.records; i++) {
    r.varint();  // record length
    r.i8();      // attributes
    const tsDelta = r.varlong();
    const offDelta = r.varint();
    const kl = r.varint();
    const key = kl < 0 ? null : body.toString('utf8', r.pos, (r.pos += kl));
    const vl = r.varint();
    const value = vl < 0 ? null : body.toString('utf8', r.pos, (r.pos += vl));
    const headers = [];
    const hn = r.varint();
    for (let h = 0; h < hn; h++) {
      const nl = r.varint(); const name = body.toString('utf8', r.pos, (r.pos += nl));
      const hl = r.varint(); const val = hl < 0 ? null : body.toString('utf8', r.pos, (r.pos += hl));
      headers.push([name, val]);
    }
    out.push({ offset: batch.baseOffset + BigInt(offDelta), timestamp: batch.firstTimestamp + tsDelta, key, value, headers });
  }
  return out;
}

// One uncompressed v2 record batch of `count` small records, for Produce probes.
function buildBatch(count, magic = 2) {
  const now = BigInt(Date.now());
  const recs = new Writer();
  for (let i = 0; i < count; i++) {
    const value = Buffer.from(`{"probe":${i}}`);
    const rec = new Writer().i8(0).varlong(0).varint(i).varint(-1).varint(value.length).raw(value).varint(0).build();
    recs.varint(rec.length).raw(rec);
  }
  const afterCrc = new Writer().i16(0).i32(count - 1).i64(now).i64(now).i64(-1).i16(-1).i32(-1).i32(count).raw(recs.build()).build();
  const crcPart = new Writer().i8(magic).u32(crc32c(afterCrc)).raw(afterCrc).build();
  const lengthPart = new Writer().i32(0).raw(crcPart).build();  // partitionLeaderEpoch + rest
  return new Writer().i64(0).i32(lengthPart.length).raw(lengthPart).build();
}

function encodeProduce(v, topic, partition, acks, records) {
  const w = new Writer();
  if (v >= 3) w.str(null);
  w.i16(acks).i32(5000);
  w.array([topic], (w, t) => { w.str(t); w.array([partition], (w, p) => { w.i32(p); w.bytes(records); }); });
  return w.build();
}
function decodeProduce(r, v) {
  const out = {
    topics: r.array((r) => ({
      name: r.str(),
      partitions: r.array((r) => {
        const p = { partition: r.i32(), error: r.i16(), base_offset: r.i64() };
        if (v >= 2) p.log_append_time = r.i64();
        if (v >= 5) p.log_start_offset = r.i64();
        return p;
      }),
    })),
  };
  if (v >= 1) out.throttle = r.i32();
  out.trailing = r.left();
  return out;
}

// ---------------------------------------------------------------------------
// Commands

function parseArgs(argv) {
  const a = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i].startsWith('--')) {
      const k = argv[i].slice(2);
      if (k === 'records') a[k] = true;
      else a[k] = argv[++i];
    } else a._.push(argv[i]);
  }
  return a;
}

const show = (o) => JSON.stringify(o, (k, v) => (typeof v === 'bigint' ? Number(v) : k === 'body' ? undefined : v));

async function withConn(broker, fn) {
  const c = new Conn(broker);
  await c.open();
  try { return await fn(c); } finally { c.close(); }
}

// For each API: every version from 0 to one past the advertised maximum, on a
// fresh connection, reporting whether the broker answered and decoded cleanly.
async function cmdVersions(a) {
  const topic = a.topic || 'events';
  const adv = await withConn(a.broker, async (c) => decodeApiVersions(await c.request(API.ApiVersions, 0, encodeApiVersions(0)), 0));
  const md = await withConn(a.broker, async (c) => decodeMetadata(await c.request(API.Metadata, 1, encodeMetadata(1, [topic])), 1));
  const me = md.brokers.find((b) => `${b.host}:${b.port}` === a.broker);
  const t = md.topics[0];
  const part = t.partitions.find((p) => me && p.leader === me.id);
  const p = part ? part.id : 0;
  console.log(`broker ${a.broker} (id ${me ? me.id : '?'}); probing partition ${topic} [${p}]${part ? ' (led here)' : ' (NOT led here)'}`);
  for (const name of ['ApiVersions', 'Metadata', 'ListOffsets', 'Fetch', 'Produce']) {
    const key = API[name];
    const entry = adv.apis.find((x) => x.key === key);
    const max = entry ? entry.max : -1;
    const line = [];
    for (let v = 0; v <= max + 1; v++) {
      let body, decode;
      switch (name) {
        case 'ApiVersions': body = encodeApiVersions(v); decode = decodeApiVersions; break;
        case 'Metadata': body = encodeMetadata(v, [topic]); decode = decodeMetadata; break;
        case 'ListOffsets': body = encodeListOffsets(v, topic, [p], -1); decode = decodeListOffsets; break;
        case 'Fetch': body = encodeFetch(v, topic, p, 0, 1 << 20, 0); decode = decodeFetch; break;
        case 'Produce': body = encodeProduce(v, topic, p, -1, buildBatch(1)); decode = decodeProduce; break;
      }
      const flexibleHeader = name === 'ApiVersions' && v >= 3;
      const r = await withConn(a.broker, (c) => c.request(key, v, body, { flexibleHeader, timeoutMs: 3000 }));
      let verdict;
      if (r === null) verdict = 'closed';
      else if (r === 'timeout') verdict = 'no-answer';
      else {
        try {
          // ApiVersions v3+: only the error code is portable (see cmdApiVersions).
          const d = name === 'ApiVersions' && v >= 3 ? { error: r.i16(), trailing: 0 } : decode(r, v);
          const err = name === 'ApiVersions' ? d.error
            : name === 'Metadata' ? d.topics[0].error
            : d.topics ? d.topics[0].partitions[0].error : 0;
          verdict = err ? `err${err}` : 'ok';
          if (d.trailing) verdict += `(+${d.trailing}B)`;
        } catch (e) { verdict = 'undecodable'; }
      }
      line.push(`v${v}:${verdict}`);
    }
    console.log(`${name.padEnd(12)} advertised ${entry ? `${entry.min}..${entry.max}` : 'none'}  ${line.join(' ')}`);
  }
}

async function cmdApiVersions(a) {
  const v = Number(a.version ?? 2);
  const r = await withConn(a.broker, (c) => c.request(API.ApiVersions, v, encodeApiVersions(v), { flexibleHeader: v >= 3 }));
  if (r === null || r === 'timeout') { console.log(`ApiVersions v${v}: ${r === null ? 'connection closed' : 'no answer'}`); return 1; }
  const raw = r.buf.subarray(r.pos);
  if (v >= 3 && raw.readInt16BE(0) !== 0) {
    // Kafka answers an ApiVersions version it does not support with error 35 and a
    // v0 body. librdkafka 2.0.2's mock does not: it writes the key count as one
    // byte (the plain count, not compact N+1) and then v0-style entries and a
    // throttle time. Only the error code is safe to read; print the rest.
    console.log(`ApiVersions v${v}: error ${errName(raw.readInt16BE(0))}; body after the error: ${raw.subarray(2).toString('hex')}`);
    return 0;
  }
  const d = decodeApiVersions(new Reader(raw), v);
  console.log(`ApiVersions v${v}: error ${errName(d.error)}, ${d.apis.length} apis, trailing ${d.trailing} bytes`);
  for (const x of d.apis) console.log(`  ${String(x.key).padStart(3)} ${(API_NAME[x.key] || '').padEnd(12)} ${x.min}..${x.max}`);
  return 0;
}

async function cmdMetadata(a) {
  const v = Number(a.version ?? 1);
  const r = await withConn(a.broker, (c) => c.request(API.Metadata, v, encodeMetadata(v, a.topic ? [a.topic] : null)));
  if (r === null || r === 'timeout') { console.log(`Metadata v${v}: ${r === null ? 'connection closed' : 'no answer'}`); return 1; }
  const d = decodeMetadata(r, v);
  console.log(`Metadata v${v}: cluster ${d.cluster_id ?? '-'} controller ${d.controller ?? '-'} trailing ${d.trailing} bytes`);
  for (const b of d.brokers) console.log(`  broker ${b.id} ${b.host}:${b.port} rack ${b.rack ?? '-'}`);
  for (const t of d.topics) {
    console.log(`  topic ${t.name} error ${errName(t.error)}`);
    for (const p of t.partitions) console.log(`    [${p.id}] leader ${p.leader} replicas ${p.replicas} isr ${p.isr} error ${p.error}`);
  }
  return 0;
}

async function cmdOffsets(a) {
  const v = Number(a.version ?? 1);
  const p = Number(a.partition ?? 0);
  for (const [label, ts] of [['earliest', -2], ['latest', -1], ['by-time(0)', 0]]) {
    const r = await withConn(a.broker, (c) => c.request(API.ListOffsets, v, encodeListOffsets(v, a.topic, [p], ts)));
    if (r === null || r === 'timeout') { console.log(`ListOffsets v${v} ${label}: ${r === null ? 'connection closed' : 'no answer'}`); return 1; }
    const d = decodeListOffsets(r, v);
    console.log(`ListOffsets v${v} ${label}: ${show(d.topics[0].partitions[0])} trailing ${d.trailing} bytes`);
  }
  return 0;
}

async function cmdFetch(a) {
  const v = Number(a.version ?? 4);
  const p = Number(a.partition ?? 0);
  const offset = BigInt(a.offset ?? 0);
  const maxBytes = Number(a['max-bytes'] ?? 52428800);
  const maxWaitMs = Number(a['max-wait'] ?? 100);
  const t0 = Date.now();
  const r = await withConn(a.broker, (c) => c.request(API.Fetch, v, encodeFetch(v, a.topic, p, offset, maxBytes, maxWaitMs), { timeoutMs: maxWaitMs + 5000 }));
  const elapsedMs = Date.now() - t0;
  if (r === null || r === 'timeout') { console.log(`Fetch v${v}: ${r === null ? 'connection closed' : 'no answer'}`); return 1; }
  const d = decodeFetch(r, v);
  const pr = d.topics[0].partitions[0];
  const batches = decodeBatches(pr.records);
  console.log(`Fetch v${v} ${a.topic} [${p}] @${offset}: error ${errName(pr.error)} high_watermark ${pr.high_watermark} ` +
    `log_start ${pr.log_start_offset ?? '-'} records_bytes ${pr.records ? pr.records.length : 0} batches ${batches.length} trailing ${d.trailing} ` +
    `answered_after_ms ${elapsedMs}`);
  for (const b of batches) {
    console.log(`  batch ${show(b)}`);
    if (a.records && b.magic === 2) {
      const recs = decodeRecords(b);
      if (!recs) console.log(`    (records compressed with ${b.codec}: not decoded here)`);
      else for (const rec of recs.slice(0, 3)) console.log(`    record ${show(rec)}`);
    }
  }
  return 0;
}

async function cmdProduce(a) {
  const v = Number(a.version ?? 7);
  const p = Number(a.partition ?? 0);
  const acks = Number(a.acks ?? -1);
  const count = Number(a.count ?? 3);
  const magic = Number(a.magic ?? 2);
  const r = await withConn(a.broker, (c) => c.request(API.Produce, v, encodeProduce(v, a.topic, p, acks, buildBatch(count, magic)), { timeoutMs: 2000 }));
  if (r === null || r === 'timeout') { console.log(`Produce v${v} acks ${acks}: ${r === null ? 'connection closed' : 'no answer within 2 s'}`); return acks === 0 ? 0 : 1; }
  const body = r.buf.subarray(r.pos);
  try {
    const d = decodeProduce(r, v);
    console.log(`Produce v${v} acks ${acks} magic ${magic}: ${show(d.topics[0].partitions[0])} trailing ${d.trailing}`);
    return 0;
  } catch (e) {
    // librdkafka 2.0.2's mock answers v5 without log_start_offset (it writes it from v6).
    console.log(`Produce v${v}: response does not decode as v${v} (${e.message}); body ${body.toString('hex')}`);
    return 1;
  }
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const cmd = a._[0];
  const cmds = { versions: cmdVersions, apiversions: cmdApiVersions, metadata: cmdMetadata, offsets: cmdOffsets, fetch: cmdFetch, produce: cmdProduce };
  if (!cmds[cmd] || !a.broker || (['offsets', 'fetch', 'produce'].includes(cmd) && !a.topic)) {
    console.error('usage: node kafka-probe.js versions|apiversions|metadata|offsets|fetch|produce --broker H:P [--topic T] ... (see the header)');
    process.exit(2);
  }
  try {
    process.exitCode = (await cmds[cmd](a)) || 0;
  } catch (e) {
    console.error(`kafka-probe: ${e.message}`);
    process.exitCode = 1;
  }
}

main();
