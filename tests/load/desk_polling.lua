-- Each wrk connection is one trader polling one fragment with its own session cookie.
-- FRAGMENT (env) picks dashboard | run | positions. Traders come from TRADERS (default desk-load.lua, written by seed_desk_load).
local traders = dofile(os.getenv("TRADERS") or "desk-load.lua")
local fragment = os.getenv("FRAGMENT") or "dashboard"
local counter = 0
function setup(thread)
  thread:set("offset", counter)
  counter = counter + 1
end
local n = 0
function request()
  n = n + 1
  local t = traders[((offset * 997 + n) % #traders) + 1]
  local path = "/desk/live/"
  if fragment == "run" then path = "/execution/runs/" .. t.run .. "/live/" end
  if fragment == "positions" then path = "/execution/positions/live/" end
  return wrk.format("GET", path, {["Cookie"] = t.cookie, ["HX-Request"] = "true"})
end
function done(summary, latency, requests)
  io.write(string.format("RESULT fragment=%s requests=%d errors=%d non2xx=%d p50_ms=%.1f p95_ms=%.1f p99_ms=%.1f max_ms=%.1f rps=%.1f\n",
    fragment, summary.requests, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status, latency:percentile(50)/1000, latency:percentile(95)/1000, latency:percentile(99)/1000,
    latency.max/1000, summary.requests / (summary.duration / 1e6)))
end
-- POLL_MS (env): the htmx interval; each connection waits that long between its requests,
-- as a page does. 0 = back to back (saturation).
local poll = tonumber(os.getenv("POLL_MS") or "2000")
-- Pages are opened at different moments, so their timers are out of phase: each wait is the
-- interval give or take half of it (mean = the interval), which spreads the 50 pollers out.
if poll > 0 then
  math.randomseed(os.time())
  function delay() return math.random(poll / 2, poll * 3 / 2) end
end
