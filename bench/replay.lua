-- replay.lua - wrk script: POST every file of a PKCSReq corpus once (PKIOperation).
--
--   wrk -tT -cC -dD -s bench/replay.lua URL -- THREADS SAMPLE_DIR|- SAMPLES DIR...
--
-- Each DIR holds req-000000.der, req-000001.der, ... (read until the first gap);
-- together they form one list of bodies. Thread k of THREADS (pass wrk's -t)
-- replays entries k, k+THREADS, k+2*THREADS, ... so no body is sent twice: the load
-- tool only replays bytes, every enrollment is unique. When a thread runs out of
-- files it stops (and sends one cheap GetCACaps instead of a duplicate
-- enrollment); the summary says so ("exhausted"), and the bench treats the
-- figure as a lower bound.
--
-- Every reply is classified without crypto: pkiStatus is a signed, unencrypted
-- attribute of the CertRep SignedData, so the DER of the attribute (OID
-- 2.16.840.1.113733.1.9.3, SET { PrintableString "0" | "2" | "3" }) is visible in
-- the body. The first SAMPLES replies per thread are also written to SAMPLE_DIR
-- for a full cryptographic check (scepreq reply).
--
-- done() prints one machine-readable line:
--   RESULT requests=N duration_us=N ok=N fail=N pending=N unknown=N non200=N
--          errors=N exhausted=N

local thread_no = 0
local threads = {}

function setup(thread)
   thread:set("tid", thread_no)
   thread_no = thread_no + 1
   table.insert(threads, thread)
end

local reqs, nreq, idx = {}, 0, 0
local sample_dir, samples, saved = nil, 0, 0
ok, fail, pending, unknown, non200, exhausted = 0, 0, 0, 0, 0, 0
local caps_req

local function read_all(path)
   local f = io.open(path, "rb")
   if not f then return nil end
   local d = f:read("*a")
   f:close()
   return d
end

function init(args)
   local nthreads = tonumber(args[1])
   sample_dir, samples = args[2], tonumber(args[3] or "0")
   if sample_dir == "-" then sample_dir = nil end
   local tid = wrk.thread:get("tid")
   local hdr = { ["Content-Type"] = "application/x-pki-message" }
   local g = 0  -- global entry number across all DIRs
   for a = 4, #args do
      local i = 0
      while true do
         local path = string.format("%s/req-%06d.der", args[a], i)
         if g % nthreads == tid then
            local body = read_all(path)
            if not body then break end
            nreq = nreq + 1
            reqs[nreq] = wrk.format("POST", wrk.path, hdr, body)
         else
            local f = io.open(path, "rb")
            if not f then break end
            f:close()
         end
         i = i + 1
         g = g + 1
      end
   end
   caps_req = wrk.format("GET", (wrk.path:gsub("%?.*$", "")) .. "?operation=GetCACaps")
   wrk.thread:set("tid", tid)
end

function request()
   idx = idx + 1
   if idx > nreq then
      exhausted = 1
      wrk.thread:stop()
      return caps_req
   end
   return reqs[idx]
end

local OID = "\6\10\96\134\72\1\134\248\69\1\9\3"  -- pkiStatus

function response(status, headers, body)
   if status ~= 200 then
      non200 = non200 + 1
      return
   end
   local s, e = string.find(body, OID, 1, true)
   local st
   if e then
      -- SET (31 len) { PrintableString (13 01 X) }
      local a, b, c = string.byte(body, e + 3, e + 5)
      if a == 0x13 and b == 1 then st = c end
   end
   if st == 48 then ok = ok + 1          -- "0" SUCCESS
   elseif st == 50 then fail = fail + 1  -- "2" FAILURE
   elseif st == 51 then pending = pending + 1
   else
      -- not a CertRep (e.g. the final GetCACaps after exhaustion) or unreadable
      if not (exhausted == 1 and string.find(body, "SHA", 1, true)) then
         unknown = unknown + 1
      end
   end
   if sample_dir and saved < samples and st then
      saved = saved + 1
      local f = io.open(string.format("%s/reply-%d-%d.der", sample_dir,
                                      wrk.thread:get("tid"), saved), "wb")
      if f then f:write(body); f:close() end
   end
end

function done(summary, latency, requests)
   local t = { ok = 0, fail = 0, pending = 0, unknown = 0, non200 = 0, exhausted = 0 }
   for _, th in ipairs(threads) do
      for k, _ in pairs(t) do t[k] = t[k] + (th:get(k) or 0) end
   end
   local e = summary.errors
   io.write(string.format(
      "RESULT requests=%d duration_us=%d ok=%d fail=%d pending=%d unknown=%d non200=%d errors=%d exhausted=%d p50_us=%d p99_us=%d\n",
      summary.requests, summary.duration, t.ok, t.fail, t.pending, t.unknown, t.non200,
      e.connect + e.read + e.write + e.timeout, t.exhausted,
      latency:percentile(50), latency:percentile(99)))
end
