-- POST with a JSON body; run.py sets PATH_ and BODY_ (the 1 KiB document).
wrk.method = "POST"
wrk.path = PATH_
wrk.body = BODY_
wrk.headers["Content-Type"] = "application/json"
