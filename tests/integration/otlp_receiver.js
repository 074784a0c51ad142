// OTLP/HTTP test receiver for sonde's integration tests. Decodes request
// bodies with OpenTelemetry JS's generated protobuf definitions (an
// independent decoder, not sonde's) and appends one JSON line per request.
//
// usage: node otlp_receiver.js PORT OUT.jsonl
//   prints "ready PORT" once listening on 127.0.0.1.
// Fault control (from the test):
//   POST /control?fail=N        answer the next N export requests with 503
//   POST /control?fail_ms=T     answer 503 for the next T milliseconds
//   POST /control?retry_after=S add "Retry-After: S" to those 503 answers
//   POST /control?status=C&n=N  answer the next N export requests with C
//   POST /control?partial=K     next trace answer reports K rejected spans
//   ...&path=/v1/traces         the faults above hit only this path (default: all)
'use strict';
const http = require('http');
const fs = require('fs');
const path = require('path');
const zlib = require('zlib');

const root = require(path.join(__dirname, '..', '..', 'build', 'npm', 'node_modules', '@opentelemetry',
  'otlp-transformer', 'build', 'src', 'generated', 'root.js'));
const col = root.opentelemetry.proto.collector;
const kinds = {
  '/v1/traces': [col.trace.v1.ExportTraceServiceRequest, col.trace.v1.ExportTraceServiceResponse],
  '/v1/metrics': [col.metrics.v1.ExportMetricsServiceRequest, col.metrics.v1.ExportMetricsServiceResponse],
};

const port = parseInt(process.argv[2], 10);
const out = process.argv[3];
const fault = { fail: 0, failUntil: 0, retryAfter: null, status: 0, statusN: 0, partial: 0, path: null };

function record(obj) {
  fs.appendFileSync(out, JSON.stringify(obj) + '\n');
}

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const url = new URL(req.url, 'http://x');
    if (url.pathname === '/control') {
      const q = url.searchParams;
      if (q.has('fail')) fault.fail = parseInt(q.get('fail'), 10);
      if (q.has('fail_ms')) fault.failUntil = Date.now() + parseInt(q.get('fail_ms'), 10);
      if (q.has('retry_after')) fault.retryAfter = q.get('retry_after');
      if (q.has('status')) { fault.status = parseInt(q.get('status'), 10); fault.statusN = parseInt(q.get('n') || '1', 10); }
      if (q.has('partial')) fault.partial = parseInt(q.get('partial'), 10);
      fault.path = q.get('path');
      res.end('ok\n');
      return;
    }
    const kind = kinds[url.pathname];
    const rec = { path: url.pathname, time: Date.now(), headers: req.headers, method: req.method };
    if (!kind) {
      rec.status = 404;
      record(rec);
      res.writeHead(404);
      res.end();
      return;
    }
    let body = Buffer.concat(chunks);
    rec.bytes = body.length;
    // decoded whatever the answer will be, so the test can count what a
    // refused request carried
    try {
      if (req.headers['content-encoding'] === 'gzip') body = zlib.gunzipSync(body);
      const msg = kind[0].decode(body);
      rec.body = kind[0].toObject(msg, { longs: String, bytes: String, enums: Number, defaults: false });
    } catch (e) {
      rec.status = 400;
      rec.error = String(e);
      record(rec);
      res.writeHead(400);
      res.end(String(e));
      return;
    }
    const hit = !fault.path || fault.path === url.pathname;
    if (hit && (fault.fail > 0 || Date.now() < fault.failUntil)) {
      if (fault.fail > 0) fault.fail--;
      rec.status = 503;
      record(rec);
      const h = {};
      if (fault.retryAfter !== null) h['Retry-After'] = fault.retryAfter;
      res.writeHead(503, h);
      res.end('busy');
      return;
    }
    if (hit && fault.statusN > 0) {
      fault.statusN--;
      rec.status = fault.status;
      record(rec);
      res.writeHead(fault.status);
      res.end();
      return;
    }
    rec.status = 200;
    let resp = {};
    if (fault.partial > 0 && url.pathname === '/v1/traces') {
      resp = { partialSuccess: { rejectedSpans: fault.partial, errorMessage: 'test rejects' } };
      rec.partial = fault.partial;
      fault.partial = 0;
    }
    record(rec);
    const rb = kind[1].encode(kind[1].fromObject(resp)).finish();
    res.writeHead(200, { 'Content-Type': 'application/x-protobuf' });
    res.end(Buffer.from(rb));
  });
});
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`ready ${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
