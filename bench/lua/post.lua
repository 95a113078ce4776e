-- POSTs one file's bytes to the URL's path on every request.
--   wrk ... -s bench/lua/post.lua URL -- CONTENT_TYPE FILE
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(dir .. "report.lua")

function init(args)
   local f = assert(io.open(args[2], "rb"))
   wrk.method = "POST"
   wrk.body = f:read("*a")
   f:close()
   wrk.headers["Content-Type"] = args[1]
   wrk.headers["Accept"] = "text/csv"
end
