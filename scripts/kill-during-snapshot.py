#!/usr/bin/env python3
"""SIGKILL while a snapshot is being encoded (not a test; not in CI; release build).

Starts a release `atrium serve` on research-40k (bookkeeping only), submits jobs from 32
clients and records every acknowledged job id. Each round waits until the server has a
child process (the snapshot's encoder, DurableCore::ForkSnapshot), SIGKILLs the server
then, checks that the child died with it (PR_SET_PDEATHSIG), restarts on the same store
and GETs every acknowledged job. One JSON line per round.

    scripts/kill-during-snapshot.py [ROUNDS]     (default 3; builds the release atrium)
"""
import http.client, json, os, shutil, signal, socket, subprocess, sys, tempfile, threading, time
root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
subprocess.run(["cmake", "--preset", "release"], cwd=root, check=True, capture_output=True)
subprocess.run(["cmake", "--build", "--preset", "release", "--target", "atrium"], cwd=root,
               check=True, capture_output=True)
atrium = root + "/build/release/src/cli/atrium"
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
work = tempfile.mkdtemp()
with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
def start():
    log = open(work + "/serve.log", "a")
    p = subprocess.Popen([atrium, "serve", "--data", work + "/data", "--listen", f"127.0.0.1:{port}",
                          "--rate-limit", "0", "--bootstrap-cluster", root + "/examples/clusters/research-40k.toml"],
                         stdout=log, stderr=log)
    t0 = time.time()
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5); c.request("GET", "/readyz")
            if c.getresponse().status == 200: break
        except Exception: pass
        time.sleep(0.05)
    return p, time.time() - t0
p, _ = start()
setup = subprocess.run([root + "/scripts/service-demo.sh", f"http://127.0.0.1:{port}", work + "/data/admin.token", atrium],
                       capture_output=True, text=True, cwd=root).stdout.strip().splitlines()[-1]
kv = dict(x.split("=", 1) for x in setup.split() if "=" in x)
token = open(kv["researcher_token"]).read().strip()
program, grant = kv["program"], kv["grant"]
acked = []
lock = threading.Lock()
stop = threading.Event()
def client():
    c = None
    while not stop.is_set():
        try:
            if c is None: c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("POST", "/v1/jobs", json.dumps({"program": program, "grant": grant, "chips": 1, "walltime_s": 60, "name": "k"}),
                      {"Authorization": "Bearer " + token, "Content-Type": "application/json"})
            r = c.getresponse(); body = r.read()
            if r.status == 201:
                with lock: acked.append(json.loads(body)["job"])
        except Exception:
            c = None; time.sleep(0.01)
for rnd in range(rounds):
    stop.clear()
    threads = [threading.Thread(target=client) for _ in range(32)]
    for t in threads: t.start()
    # wait for a snapshot child to appear, then SIGKILL the server
    killed_during_child = False
    deadline = time.time() + 120
    while time.time() < deadline:
        kids = subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split()
        if kids:
            os.kill(p.pid, signal.SIGKILL); killed_during_child = True; break
        time.sleep(0.002)
    if not killed_during_child: os.kill(p.pid, signal.SIGKILL)
    p.wait()
    time.sleep(0.3)
    orphans = subprocess.run(["pgrep", "-f", "atrium serve --data " + work], capture_output=True, text=True).stdout.split()
    stop.set()
    for t in threads: t.join()
    p, restart_s = start()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    missing = 0
    with lock: ids = list(acked)
    for j in ids:
        c.request("GET", "/v1/jobs/" + j, headers={"Authorization": "Bearer " + token}); r = c.getresponse(); r.read()
        if r.status != 200: missing += 1
    print(json.dumps({"round": rnd + 1, "killed_while_child_encoding": killed_during_child, "child_left_after_kill": len(orphans),
                      "acknowledged": len(ids), "missing": missing, "restart_s": round(restart_s, 2)}), flush=True)
p.send_signal(signal.SIGTERM); p.wait()
shutil.rmtree(work)
