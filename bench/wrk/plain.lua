-- GET the URL as given (the framework floor app's small JSON answer), with the shared report.
-- Usage: wrk -s plain.lua URL
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "report.lua")
