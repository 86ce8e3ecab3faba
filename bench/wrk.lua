-- The requests of one bench scenario, and its summary as one JSON line (bench/bench.py reads it).
--
--   wrk ... URL -- fixed                    the URL's path and query, every time (a static request)
--   wrk ... URL -- random PREFIX LOW HIGH   PREFIX followed by a random integer in LOW..HIGH
--
-- Only the random mode defines request(): wrk builds a static request once otherwise, so the
-- fixed scenarios (and the limit) pay nothing for the script.

local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("number", threads)
end

function init(args)
  if args[1] == "random" then
    local prefix, low, high = args[2], tonumber(args[3]), tonumber(args[4])
    -- Each thread its own sequence, different in every run.
    math.randomseed(os.time() * 1000 + number)
    request = function()
      return wrk.format(nil, prefix .. math.random(low, high))
    end
  end
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '\n{"requests": %d, "duration_us": %d, "bytes": %d, "status": %d, "connect": %d, '
      .. '"read": %d, "write": %d, "timeout": %d, "p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, summary.bytes, errors.status, errors.connect,
    errors.read, errors.write, errors.timeout, latency:percentile(50), latency:percentile(99)
  ))
end
