-- bench/ingest.lua: wrk script for PutEvents (AWS JSON 1.1).
--   wrk ... -s bench/ingest.lua URL -- ENTRIES DETAIL_BYTES SOURCE
-- Every request carries ENTRIES entries whose Detail is a JSON object string
-- of exactly DETAIL_BYTES bytes. done() prints one line "JSON {...}" with the
-- counts and the latency percentiles (microseconds) for bench/ingest.

local body

function init(args)
   local entries = tonumber(args[1] or "1")
   local dsize = tonumber(args[2] or "400")
   local source = args[3] or "bench.src"
   local fixed = '{"pad":""}'
   local detail = '{"pad":"' .. string.rep("x", math.max(0, dsize - #fixed)) .. '"}'
   local escaped = detail:gsub('"', '\\"')
   local entry = '{"Source":"' .. source .. '","DetailType":"bench.type","Detail":"'
      .. escaped .. '"}'
   local list = {}
   for i = 1, entries do
      list[i] = entry
   end
   body = '{"Entries":[' .. table.concat(list, ",") .. ']}'
   wrk.method = "POST"
   wrk.body = body
   wrk.headers["Content-Type"] = "application/x-amz-json-1.1"
   wrk.headers["X-Amz-Target"] = "AWSEvents.PutEvents"
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean))
end
