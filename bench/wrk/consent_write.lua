-- POST one consent decision to a random seeded customer (bench-NNNNNN), alternating
-- granted/withdrawn. Usage: wrk -H "Authorization: Bearer KEY" -s consent_write.lua URL -- CUSTOMERS
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")

local bodies = {
  '{"decisions":[{"purpose":"analytics","decision":"granted"}]}',
  '{"decisions":[{"purpose":"analytics","decision":"withdrawn"}]}',
}
local counter = 0

function prepare()
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local path = string.format("/v1/customers/bench-%06d/consents", math.random(0, customers - 1))
  return wrk.format("POST", path, nil, bodies[counter % 2 + 1])
end
