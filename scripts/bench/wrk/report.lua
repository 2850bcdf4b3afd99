-- Appended to every wrk scenario script by scripts/bench.sh: at the end of the run, prints one
-- machine-readable line (latencies in microseconds, wrk's own error counters; err_status is
-- wrk's count of responses with a status >= 400).
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d bytes=%d err_connect=%d err_read=%d err_write=%d " ..
    "err_status=%d err_timeout=%d lat_p50_us=%d lat_p90_us=%d lat_p99_us=%d lat_max_us=%d " ..
    "lat_mean_us=%.1f\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
