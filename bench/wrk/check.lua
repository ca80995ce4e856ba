-- GET the decision for purpose 'analytics' of a random seeded customer (bench-NNNNNN).
-- Usage: wrk -H "Authorization: Bearer KEY" -s check.lua URL -- CUSTOMERS
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")

function request()
  local path = string.format(
    "/v1/customers/bench-%06d/check?purpose=analytics", math.random(0, customers - 1))
  return wrk.format("GET", path)
end
