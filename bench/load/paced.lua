-- wrk script for bench/load/run.sh: every connection waits WRK_DELAY_MS (default 10) before each
-- request (wrk's delay() hook), so the offered load stays below saturation and the latency
-- figures are not just queueing (Little's law: at saturation mean latency = connections / rate).
local ms = tonumber(os.getenv("WRK_DELAY_MS") or "10")
function delay()
  return ms
end
