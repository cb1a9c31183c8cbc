-- wrk script: POST /payments with a fresh correlationId on every request, so
-- every request is stored (a repeated id would only measure the 422 path).
--   wrk -t1 -c64 -d20s -s crates/sim/bench/post_payments.lua http://127.0.0.1:8001
-- Each wrk thread numbers its ids from its own random prefix. wrk prints
-- "Non-2xx or 3xx responses" if any request was not stored; the sim's
-- GET /admin/stats (payments_stored) confirms the count.

local counter = 0
local prefix

function setup(thread)
  thread:set("seed", math.random(0, 0xffffff))
end

function init(args)
  math.randomseed(os.time() + (seed or 0))
  prefix = string.format("%08x-%04x-4%03x-8%03x-", math.random(0, 0x7fffffff),
    math.random(0, 0xffff), math.random(0, 0xfff), math.random(0, 0xfff))
end

local headers = { ["Content-Type"] = "application/json" }

function request()
  counter = counter + 1
  local body = string.format(
    '{"correlationId":"%s%012x","amount":19.90,"requestedAt":"2025-07-15T12:34:56.000Z"}',
    prefix, counter)
  return wrk.format("POST", "/payments", headers, body)
end
