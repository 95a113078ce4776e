-- GETs the URL (/ping): the baseline of the HTTP stack itself.
--   wrk ... -s bench/lua/ping.lua URL
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")
