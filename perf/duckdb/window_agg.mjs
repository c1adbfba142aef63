// DuckDB peer for perf/run.sh: the Sluice job (5-minute tumbling windows per
// product: sum quantity, sum revenue, count) as one SQL statement over the
// same NDJSON file, written to a CSV file as Sluice writes its rows.
//
//   node window_agg.mjs FILE OUT.csv THREADS
// prints: events=N rows=R seconds=S events_per_s=E threads=T duckdb=VERSION
//
// The clock covers the COPY statement only (reading and parsing the file,
// aggregation, writing the result), not node's or DuckDB's start-up. Column
// types are given, as Sluice's [schema] gives them, so no time goes to type
// sniffing; TIMESTAMPTZ with TimeZone = UTC honours an RFC 3339 offset as
// Sluice does (TIMESTAMP would drop it). window_start is written as Unix
// seconds, which is what perf/compare_results.py compares.
import { DuckDBInstance } from '@duckdb/node-api';

const [file, out, threadsArg] = process.argv.slice(2);
const threads = Number(threadsArg);
if (!file || !out || !(threads >= 1)) {
  console.error('usage: node window_agg.mjs FILE OUT.csv THREADS');
  process.exit(2);
}
const quote = (s) => `'${s.replaceAll("'", "''")}'`;

const instance = await DuckDBInstance.create(':memory:');
const db = await instance.connect();
await db.run(`SET threads = ${threads}`);
await db.run(`SET TimeZone = 'UTC'`);
const version = (await db.runAndReadAll('SELECT version() AS v')).getRowObjects()[0].v;

const sql = `
COPY (
  SELECT epoch(time_bucket(INTERVAL 5 MINUTE, "timestamp"))::BIGINT AS window_start,
         product_id,
         sum(quantity) AS total_quantity,
         sum(revenue) AS total_revenue,
         count(*) AS events
  FROM read_json(${quote(file)}, format = 'newline_delimited',
                 columns = {product_id: 'BIGINT', customer_id: 'VARCHAR', quantity: 'BIGINT',
                            revenue: 'DOUBLE', "timestamp": 'TIMESTAMPTZ'})
  GROUP BY ALL
) TO ${quote(out)} (FORMAT csv, HEADER)`;

const start = performance.now();
const result = await db.run(sql);
const seconds = (performance.now() - start) / 1e3;
const rows = Number(result.rowsChanged);

// Events in: counted outside the clock (the COPY reports only rows out).
const events = Number((await db.runAndReadAll(
  `SELECT count(*) AS n FROM read_json(${quote(file)}, format = 'newline_delimited', columns = {product_id: 'BIGINT'})`,
)).getRowObjects()[0].n);

console.log(`events=${events} rows=${rows} seconds=${seconds.toFixed(6)} ` +
            `events_per_s=${Math.round(events / seconds)} threads=${threads} duckdb=${version}`);
