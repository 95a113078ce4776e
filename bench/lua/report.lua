-- Shared by the bench scripts: after a wrk run, prints one line that
-- bench/http.sh parses (latencies in microseconds; errors counts socket
-- errors, timeouts and non-2xx/3xx responses).
function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format("RESULT rps=%.1f p50_us=%.1f p99_us=%.1f requests=%d errors=%d\n",
      summary.requests / (summary.duration / 1e6),
      latency:percentile(50), latency:percentile(99), summary.requests,
      e.connect + e.read + e.write + e.timeout + e.status))
end
