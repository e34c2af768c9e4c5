#!/usr/bin/env python3
# Full-state requests right after a write, before the version's best copies
# exist: a release server with the catalog FILE and precompression pushed
# out of reach; five times an admin write, then 16 concurrent
# `GET /state` with `Accept-Encoding: br`. Prints the server's CPU time
# (from /proc) and the wall time of each burst. Loopback only.
#
#   python3 bench/state-burst.py SERVER_BINARY PORT CATALOG_FILE
# (CATALOG_FILE: LiteLLM's, from scripts/fetch-litellm.sh 1.110.2)
import subprocess, sys, time, os, json, urllib.request, concurrent.futures, tempfile, shutil
binary, port = sys.argv[1], int(sys.argv[2])
d = tempfile.mkdtemp()
tok = "t"*32
p = subprocess.Popen([binary, "--bind", f"127.0.0.1:{port}", "--database", f"{d}/db.sqlite",
    "--catalog", sys.argv[3],
    "--admin-token", tok, "--precompress-after-ms", "100000000", "--read-rate-limit", "0"],
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
base = f"http://127.0.0.1:{port}/api/provider-sync"
for _ in range(200):
    try: urllib.request.urlopen(base + "/version").read(); break
    except Exception: time.sleep(0.1)
def cpu():
    f = open(f"/proc/{p.pid}/stat").read().split(")")[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
def get():
    r = urllib.request.Request(base + "/state", headers={"Accept-Encoding": "br"})
    t = time.time(); b = urllib.request.urlopen(r).read(); return time.time() - t, len(b)
size = len(urllib.request.urlopen(base + "/state").read())
res = []
for i in range(5):
    req = urllib.request.Request(base + "/admin/models/gpt-4o", method="PATCH",
        data=json.dumps({"max_output_tokens": 1000 + i}).encode(),
        headers={"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
    urllib.request.urlopen(req).read()
    c0 = cpu(); t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        out = list(ex.map(lambda _: get(), range(16)))
    wall = time.time() - t0; time.sleep(0.3); c1 = cpu()
    res.append((c1 - c0, wall, max(o[0] for o in out), out[0][1]))
p.terminate(); p.wait(); shutil.rmtree(d)
print(json.dumps({"json_bytes": size, "cpu_s": [round(r[0],3) for r in res], "wall_s": [round(r[1],3) for r in res], "br_bytes": res[0][3]}))
