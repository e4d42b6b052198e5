#!/usr/bin/env python3
"""Helper of scripts/bench (standard library only): drives wrk, talks to FlowMate's API,
measures the workloads W1-W6 and the two ceilings, and renders the markdown table.

scripts/bench starts and stops every server; this script only spawns one when asked to
(`spawn`, which writes the PID to a file first so that the caller's trap can kill it) and
otherwise sends load to 127.0.0.1 for bounded times. Each measurement appends one JSON line to
$BENCH_RESULTS; `table` turns those lines into the table.

Environment: BENCH_RESULTS (JSON-lines file), BENCH_WORK (scratch directory for wrk scripts),
BENCH_DURATION (seconds per wrk point, default 10), BENCH_RUNS (runs per point, median kept,
default 3).
"""

import argparse
import datetime as dt
import http.client
import json
import math
import os
import queue
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

DURATION = int(os.environ.get("BENCH_DURATION", "10"))
RUNS = max(1, int(os.environ.get("BENCH_RUNS", "3")))
RESULTS = os.environ.get("BENCH_RESULTS", "/tmp/flowmate-bench-results.jsonl")
WORK = os.environ.get("BENCH_WORK", "/tmp")

# The anchor workload's request body: exactly 140 bytes of JSON.
ANCHOR_BODY = (
    '{"orderId":"A-10042","customer":{"id":4711,"name":"Ada Lov"},'
    '"items":[{"sku":"X-1","qty":2},{"sku":"Y-7","qty":1}],"total":42.5,"cur":"EUR"}'
)
assert len(ANCHOR_BODY.encode()) == 140, len(ANCHOR_BODY.encode())
W1_CONCURRENCY = (1, 16, 64)
W2_CONCURRENCY = 16
W3_CONCURRENCY = 16
W4_FLOWS = 1000
W4_STARTERS = 8


def log(*parts):
    print("[bench]", *parts, file=sys.stderr, flush=True)


def record(row):
    with open(RESULTS, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")
    log("result:", json.dumps(row))


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def percentile(values, p):
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100.0 * len(ordered))))
    return ordered[rank - 1]


def parse_time(text):
    """RFC 3339 timestamp (any fraction length, Z or offset) to epoch seconds."""
    m = re.match(r"^(.*?T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?$", text)
    if not m:
        raise ValueError(f"not a timestamp: {text!r}")
    base, frac, zone = m.group(1), m.group(2) or "", m.group(3) or "Z"
    zone = "+00:00" if zone == "Z" else zone
    stamp = dt.datetime.fromisoformat(base + zone).timestamp()
    return stamp + (float("0" + frac) if frac else 0.0)


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


# ---------------------------------------------------------------------------------------------
# HTTP client for setup and polling (keep-alive, one connection per thread).


class Api:
    def __init__(self, base, token=None):
        u = urllib.parse.urlsplit(base)
        assert u.hostname == "127.0.0.1", "load only ever targets 127.0.0.1"
        self.host, self.port, self.token = u.hostname, u.port, token
        self.local = threading.local()

    def conn(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            c = http.client.HTTPConnection(self.host, self.port, timeout=60)
            self.local.conn = c
        return c

    def call(self, method, path, body=None, headers=None):
        hdrs = {"Accept": "application/json"}
        if self.token:
            hdrs["Authorization"] = f"Bearer {self.token}"
        if body is not None:
            hdrs["Content-Type"] = "application/json"
            body = body if isinstance(body, (bytes, str)) else json.dumps(body)
        hdrs.update(headers or {})
        for attempt in (1, 2):
            try:
                c = self.conn()
                c.request(method, path, body=body, headers=hdrs)
                r = c.getresponse()
                raw = r.read()
                break
            except (http.client.HTTPException, OSError):
                self.local.conn = None
                if attempt == 2:
                    raise
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = raw.decode(errors="replace")
        return r.status, data

    def ok(self, method, path, body=None, expect=(200, 201), retry_5xx=None):
        """The answer's body when its status is in `expect`. A GET answered 5xx is asked again
        (at most twice more; `retry_5xx` overrides for other methods): the harness's reads
        are not the measured load. Each retry is counted in SERVER_ERRORS, which the
        workloads report in their rows' notes, so a 5xx is never hidden."""
        retries = 2 if (retry_5xx if retry_5xx is not None else method == "GET") else 0
        while True:
            status, data = self.call(method, path, body)
            if status >= 500 and retries > 0:
                retries -= 1
                with SERVER_ERRORS_LOCK:
                    SERVER_ERRORS.append(f"{method} {urllib.parse.urlsplit(path).path} -> {status}")
                log(f"{method} {path} -> {status}, asking again: {str(data)[:300]}")
                time.sleep(0.05)
                continue
            if status not in expect:
                raise RuntimeError(f"{method} {path} -> {status}: {str(data)[:500]}")
            return data


# Server errors (5xx) answered to the harness's own API calls and retried; see Api.ok.
SERVER_ERRORS = []
SERVER_ERRORS_LOCK = threading.Lock()


def server_errors_note():
    """'' or a note naming the 5xx answers retried so far by this process."""
    with SERVER_ERRORS_LOCK:
        errors = list(SERVER_ERRORS)
    if not errors:
        return ""
    kinds = sorted(set(errors))
    return (f"{len(errors)} harness API calls answered 5xx and were retried "
            f"({', '.join(kinds[:3])}{', ...' if len(kinds) > 3 else ''}; see the server log)")


def login(base, username, password):
    api = Api(base)
    data = api.ok("POST", "/login", {"username": username, "password": password})
    return data["token"]


def two_node_flow(name):
    return {
        "name": name,
        "graph": {
            "nodes": [
                {"id": "in", "componentId": "webhook", "function": "receive"},
                {"id": "add", "componentId": "jq", "function": "transform",
                 "fields": {"program": ".data + {processed: true}"}},
            ],
            "edges": [{"source": "in", "target": "add"}],
        },
    }


def three_node_flow(name):
    return {
        "name": name,
        "graph": {
            "nodes": [
                {"id": "in", "componentId": "webhook", "function": "receive"},
                {"id": "add", "componentId": "jq", "function": "transform",
                 "fields": {"program": ".data + {processed: true}"}},
                {"id": "check", "componentId": "jq", "function": "transform",
                 "fields": {"program": ".data + {checked: true}"}},
            ],
            "edges": [{"source": "in", "target": "add"}, {"source": "add", "target": "check"}],
        },
    }


def create_flow(api, spec):
    # A create answered 5xx committed nothing (the flow's row and its event are one
    # transaction): asking again creates one flow.
    return api.ok("POST", "/flows", spec, retry_5xx=True)["data"]["id"]


def create_many(api, specs):
    """Creates flows with array bodies of at most 100; returns their ids."""
    ids = []
    for i in range(0, len(specs), 100):
        data = api.ok("POST", "/flows", specs[i:i + 100])["data"]
        for item in data:
            if "id" not in item:
                raise RuntimeError(f"bulk create refused an item: {str(item)[:300]}")
            ids.append(item["id"])
    return ids


def wait_status(api, flow_id, want="active", timeout=60.0, interval=0.002):
    deadline = time.monotonic() + timeout
    while True:
        data = api.ok("GET", f"/flows/{flow_id}")["data"]
        if data.get("status") == want:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"flow {flow_id} is {data.get('status')} after {timeout} s "
                               f"(statusReason: {data.get('statusReason')})")
        time.sleep(interval)


def start_flow(api, flow_id, timeout=60.0):
    # A start answered 5xx committed nothing: ask again; 409 after such a retry means the flow
    # is already starting or active, which wait_status checks.
    try:
        api.ok("POST", f"/flows/{flow_id}/start")
    except RuntimeError as e:
        if " -> 5" not in str(e):
            raise
        with SERVER_ERRORS_LOCK:
            SERVER_ERRORS.append("POST /flows/{id}/start -> 5xx")
        log(f"start of {flow_id}: {e}; asking again")
        api.ok("POST", f"/flows/{flow_id}/start", expect=(200, 201, 409), retry_5xx=True)
    wait_status(api, flow_id, "active", timeout)


# ---------------------------------------------------------------------------------------------
# wrk


LUA_DONE = r'''
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_JSON {\"requests\":%d,\"duration_us\":%d,\"non2xx\":%d,\"connect\":%d,\"read\":%d," ..
    "\"write\":%d,\"timeout\":%d,\"p50_us\":%d,\"p99_us\":%d,\"max_us\":%d,\"mean_us\":%.1f}\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max, latency.mean))
end
'''


def lua_script(method, body, headers):
    lines = [f'wrk.method = "{method}"']
    if body is not None:
        assert "]==]" not in body
        lines.append(f"wrk.body = [==[{body}]==]")
    for k, v in headers.items():
        lines.append(f'wrk.headers["{k}"] = "{v}"')
    path = os.path.join(WORK, f"wrk-{os.getpid()}-{time.monotonic_ns()}.lua")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n" + LUA_DONE)
    return path


def wrk_once(url, c, method="GET", body=None, headers=None, duration=None, rss_pids=()):
    assert urllib.parse.urlsplit(url).hostname == "127.0.0.1"
    duration = duration or DURATION
    script = lua_script(method, body, headers or {})
    cmd = ["wrk", "-t1", f"-c{c}", f"-d{duration}s", "--timeout", "10s", "-s", script, url]
    peak = {"kib": None}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            values = [rss_kib(p) for p in rss_pids]
            if values and all(v is not None for v in values):
                total = sum(values)
                peak["kib"] = max(peak["kib"] or 0, total)
            stop.wait(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    if rss_pids:
        sampler.start()
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False)
    finally:
        stop.set()
        os.unlink(script)
    m = re.search(r"^BENCH_JSON (.*)$", out.stdout, re.M)
    if not m:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout}\n{out.stderr}")
    r = json.loads(m.group(1))
    seconds = r["duration_us"] / 1e6
    errors = r["non2xx"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
    r.update(
        ok=r["requests"] - r["non2xx"],
        ok_per_s=(r["requests"] - r["non2xx"]) / seconds,
        errors=errors,
        seconds=seconds,
        peak_rss_kib=peak["kib"],
    )
    return r


def wrk_point(url, c, **kw):
    """BENCH_RUNS wrk runs of one point; median of each figure."""
    runs = [wrk_once(url, c, **kw) for _ in range(RUNS)]
    return {
        "req_s": median([r["ok_per_s"] for r in runs]),
        "p50_ms": median([r["p50_us"] / 1000 for r in runs]),
        "p99_ms": median([r["p99_us"] / 1000 for r in runs]),
        "errors": sum(r["errors"] for r in runs),
        "requests": sum(r["requests"] for r in runs),
        "peak_rss_kib": max([r["peak_rss_kib"] or 0 for r in runs]) or None,
        "runs": [round(r["ok_per_s"], 1) for r in runs],
    }


def anchor_headers(token=None):
    h = {"Content-Type": "application/json"}
    if token:
        h["Authorization"] = f"Bearer {token}"
    return h


# ---------------------------------------------------------------------------------------------
# Commands


def cmd_spawn(a):
    """Starts a server, writes its PID at once, waits for the first 200 on --ready."""
    env = dict(os.environ)
    for kv in a.env or []:
        k, _, v = kv.partition("=")
        env[k] = v
    logf = open(a.log, "ab")
    t0 = time.monotonic()
    proc = subprocess.Popen(a.cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)
    with open(a.pidfile, "w", encoding="ascii") as f:
        f.write(str(proc.pid))
    u = urllib.parse.urlsplit(a.ready)
    while True:
        if proc.poll() is not None:
            log(f"{a.cmd[0]} exited with {proc.returncode}; log {a.log}")
            sys.exit(1)
        try:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=2)
            c.request("GET", u.path or "/")
            status = c.getresponse().status
            c.close()
            if status == 200:
                break
        except OSError:
            pass
        if time.monotonic() - t0 > a.timeout:
            log(f"{a.ready} not 200 after {a.timeout} s; log {a.log}")
            sys.exit(1)
        time.sleep(0.002)
    ms = (time.monotonic() - t0) * 1000
    log(f"{a.label}: pid {proc.pid}, first 200 after {ms:.0f} ms")
    if a.record:
        record({"section": a.section, "workload": a.record, "kind": "startup", "value": ms})


def cmd_ceiling(a):
    for c in W1_CONCURRENCY:
        p = wrk_point(a.url, c, method="POST", body=ANCHOR_BODY, headers=anchor_headers())
        record({"section": "ceiling", "ceiling": a.name, "c": c, "kind": "rps",
                "workload": f"ceiling: {a.title}, c={c}", **p})


def check_w1_reply(api, path):
    status, data = api.call("POST", path, ANCHOR_BODY)
    expected = dict(json.loads(ANCHOR_BODY), processed=True)
    if status != 200:
        raise RuntimeError(f"W1 probe: {status} {str(data)[:300]}")
    return data, data == expected or data == {"data": expected}


def cmd_w1(a):
    api = Api(a.base, a.token)
    flow_id = create_flow(api, two_node_flow("bench-w1"))
    start_flow(api, flow_id)
    with open(a.flow_file, "w", encoding="ascii") as f:
        f.write(flow_id)
    path = f"/webhooks/{flow_id}?sync=true"
    reply, matches = check_w1_reply(Api(a.base), path)
    note = "" if matches else f"reply differs from the expected body: {json.dumps(reply)[:200]}"
    if note:
        log("W1:", note)
    pids = [int(p) for p in a.rss_pids.split(",")] if a.rss_pids else []
    for c in W1_CONCURRENCY:
        p = wrk_point(a.base + path, c, method="POST", body=ANCHOR_BODY, headers=anchor_headers(),
                      rss_pids=pids if c == max(W1_CONCURRENCY) else ())
        record({"section": a.section, "workload": f"W1 sync webhook, c={c}", "kind": "rps", "c": c,
                "note": note, **p})
        if p["peak_rss_kib"]:
            whose = " (sum of api + workers)" if len(pids) > 1 else ""
            record({"section": a.section, "workload": f"W5 resident memory under W1 c={c} (peak){whose}",
                    "kind": "rss", "value": p["peak_rss_kib"]})


def cmd_w6(a):
    """W6 containment: 2 x cores runaway jq programs in flight at all times (each stopped by
    its 5 s limit, then sent again), while wrk measures GET /healthcheck and GET /flows/{id};
    the same two points first without them, for the comparison."""
    api = Api(a.base, a.token)
    runaway = {
        "name": "bench-w6-runaway",
        "graph": {
            "nodes": [
                {"id": "in", "componentId": "webhook", "function": "receive"},
                {"id": "spin", "componentId": "jq", "function": "transform",
                 "fields": {"program": "last(range(1e12))", "limits": {"timeMs": 5000}}},
            ],
            "edges": [{"source": "in", "target": "spin"}],
        },
    }
    flow_id = create_flow(api, runaway)
    start_flow(api, flow_id)
    runaways = 2 * (os.cpu_count() or 1)
    reads = {"healthcheck": (a.base + "/healthcheck", {}),
             "GET /flows/{id}": (a.base + f"/flows/{flow_id}", {"Authorization": f"Bearer {a.token}"})}

    def measure(label):
        for name, (url, headers) in reads.items():
            p = wrk_point(url, 4, headers=headers)
            record({"section": a.section, "workload": f"W6 {name}, c=4, {label}", "kind": "rps", "c": 4, **p})

    measure("no runaway program")
    stop = threading.Event()
    stopped = []

    def spin():
        hook = Api(a.base)
        while not stop.is_set():
            status, data = hook.call("POST", f"/webhooks/{flow_id}?sync=true", "{}")
            stopped.append(status == 500 and "time limit" in json.dumps(data))

    threads = [threading.Thread(target=spin, daemon=True) for _ in range(runaways)]
    for t in threads:
        t.start()
    measure(f"{runaways} runaway programs running")
    stop.set()
    for t in threads:
        t.join(timeout=30)
    log(f"W6: {len(stopped)} runaway calls, {sum(stopped)} stopped by their time limit")


def count_executions(api, flow_id, status):
    q = urllib.parse.urlencode({"filter[flowId]": flow_id, "filter[status]": status, "page[size]": 1})
    return api.ok("GET", f"/executions?{q}")["meta"]["total"]


def all_executions(api, flow_id):
    items, page = [], 1
    while True:
        q = urllib.parse.urlencode({"filter[flowId]": flow_id, "page[size]": 100, "page[number]": page})
        data = api.ok("GET", f"/executions?{q}")
        items.extend(data["data"])
        if page >= data["meta"]["totalPages"] or not data["data"]:
            return items
        page += 1


def cmd_w2(a):
    api = Api(a.base, a.token)
    runs = []
    for run in range(RUNS):
        flow_id = create_flow(api, three_node_flow(f"bench-w2-{run}"))
        start_flow(api, flow_id)
        r = wrk_once(f"{a.base}/webhooks/{flow_id}", W2_CONCURRENCY, method="POST", body=ANCHOR_BODY,
                     headers=anchor_headers())
        load_end = time.time()
        accepted = r["ok"]
        # Wait (bounded) until every accepted execution has ended.
        deadline = time.monotonic() + a.drain_timeout
        while True:
            done = sum(count_executions(api, flow_id, s) for s in ("succeeded", "failed", "cancelled"))
            if done >= accepted or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        drain_s = time.time() - load_end
        execs = all_executions(api, flow_id)
        ok = [e for e in execs if e["status"] == "succeeded"]
        failed = [e for e in execs if e["status"] in ("failed", "cancelled")]
        lat = [parse_time(e["finishedAt"]) - parse_time(e["createdAt"]) for e in ok if e.get("finishedAt")]
        first = min(parse_time(e["createdAt"]) for e in execs) if execs else None
        last = max((parse_time(e["finishedAt"]) for e in ok if e.get("finishedAt")), default=None)
        completed_s = len(ok) / (last - first) if ok and last and last > first else None
        runs.append({
            "accepted_s": r["ok_per_s"], "accepted": accepted, "wrk_errors": r["errors"],
            "succeeded": len(ok), "failed": len(failed), "executions": len(execs),
            "completed_s": completed_s, "drain_s": drain_s,
            "p50_ms": percentile(lat, 50) * 1000 if lat else None,
            "p99_ms": percentile(lat, 99) * 1000 if lat else None,
        })
        log("W2 run:", json.dumps(runs[-1]))
    m = {k: median([r[k] for r in runs]) for k in ("accepted_s", "completed_s", "drain_s", "p50_ms", "p99_ms")}
    notes = []
    lost = sum(max(0, r["accepted"] - r["succeeded"]) for r in runs)
    if lost:
        notes.append(f"{lost} accepted executions did not succeed within {a.drain_timeout} s after load "
                     f"({sum(r['failed'] for r in runs)} failed)")
    if any(r["wrk_errors"] for r in runs):
        notes.append(f"{sum(r['wrk_errors'] for r in runs)} webhook calls not accepted")
    if server_errors_note():
        notes.append(server_errors_note())
    note = "; ".join(notes)
    if a.title:
        accepted_title = f"{a.title}: accepted, c={W2_CONCURRENCY}"
        completed_title = f"{a.title}: completed (first accept to last succeeded)"
    else:
        accepted_title = f"W2 async webhooks accepted, c={W2_CONCURRENCY}"
        completed_title = "W2 executions completed (first accept to last succeeded)"
    record({"section": a.section, "workload": accepted_title,
            "kind": "rps", "c": W2_CONCURRENCY, "req_s": m["accepted_s"], "p50_ms": None, "p99_ms": None,
            "errors": sum(r["wrk_errors"] for r in runs), "runs": [round(r["accepted_s"], 1) for r in runs],
            "note": note})
    record({"section": a.section, "workload": completed_title,
            "kind": "rps", "unit": "executions/s", "c": W2_CONCURRENCY, "req_s": m["completed_s"], "p50_ms": m["p50_ms"],
            "p99_ms": m["p99_ms"], "errors": sum(r["failed"] for r in runs),
            "runs": [round(r["completed_s"] or 0, 1) for r in runs],
            "note": (f"latency = accept to succeeded; backlog drained {m['drain_s']:.1f} s after load ended"
                     + (f"; {note}" if note else ""))})


def cmd_failover(a):
    """W2 on an api and two workers, one worker killed with SIGKILL mid-load: how long execution
    ends stop, and when the work routed to the killed worker runs again."""
    api = Api(a.base, a.token)
    flow_id = create_flow(api, three_node_flow("bench-failover"))
    start_flow(api, flow_id)
    killed = {}

    def kill():
        time.sleep(a.kill_after)
        killed["at"] = time.time()
        os.kill(a.kill_pid, 9)

    killer = threading.Thread(target=kill)
    killer.start()
    r = wrk_once(f"{a.base}/webhooks/{flow_id}", W2_CONCURRENCY, method="POST", body=ANCHOR_BODY,
                 headers=anchor_headers(), duration=a.duration)
    killer.join()
    deadline = time.monotonic() + a.drain_timeout
    while time.monotonic() < deadline:
        done = sum(count_executions(api, flow_id, s) for s in ("succeeded", "failed", "cancelled"))
        if done >= r["ok"]:
            break
        time.sleep(0.5)
    execs = all_executions(api, flow_id)
    kill_at = killed["at"]
    ok = [e for e in execs if e["status"] == "succeeded" and e.get("finishedAt")]
    ends = sorted(parse_time(e["finishedAt"]) for e in ok if parse_time(e["finishedAt"]) > kill_at)
    gaps = [(b - x, x - kill_at) for x, b in zip([kill_at] + ends, ends)]
    gap, gap_from = max(gaps) if gaps else (None, None)
    # Executions accepted in the second after the kill: some were routed to the killed worker's
    # partitions; the last of them to end tells when those partitions ran again.
    right_after = [parse_time(e["finishedAt"]) - kill_at for e in ok
                   if 0 <= parse_time(e["createdAt"]) - kill_at < 1]
    takeover = max(right_after) if right_after else None
    per_second = [sum(1 for t in ends if k <= t - kill_at < k + 1) for k in range(15)]
    lost = max(0, r["ok"] - len(ok))
    log("failover:", json.dumps({"accepted": r["ok"], "succeeded": len(ok), "gap_s": gap, "gap_from_s": gap_from,
                                 "takeover_s": takeover, "ends_per_second": per_second}))
    text = (f"SIGKILL of one of two workers {a.kill_after:.0f} s into {a.duration} s of W2 (c={W2_CONCURRENCY}): "
            f"longest pause in execution ends {gap:.1f} s (from {gap_from:.1f} s after the kill); "
            f"executions accepted in the second after the kill all ended {takeover:.1f} s after it at the latest "
            f"(queueing behind the backlog included); execution ends per second from the kill: "
            f"{' '.join(str(n) for n in per_second)}; {len(ok):,} executions succeeded, "
            f"{r['ok']:,} calls answered 200 before wrk stopped"
            + (f" ({lost} did not within {a.drain_timeout:.0f} s)" if lost else "")) if gap is not None and takeover is not None \
        else f"no execution ended after the kill ({len(ok)} of {r['ok']} succeeded)"
    record({"section": a.section, "workload": "W2 with a worker killed (failover)", "kind": "info", "note": text})


def cmd_history(a):
    """Creates and starts a W2-shaped flow, runs one webhook call through it, waits (bounded)
    until its execution succeeded and prints the execution's id: the template row that
    scripts/bench copies to seed stored executions (of this flow, not of any measured one)."""
    api = Api(a.base, a.token)
    flow_id = create_flow(api, three_node_flow("bench-history"))
    start_flow(api, flow_id, timeout=a.flow_timeout)
    status, data = Api(a.base).call("POST", f"/webhooks/{flow_id}", ANCHOR_BODY)
    if not 200 <= status < 300:
        raise RuntimeError(f"history webhook: {status} {str(data)[:300]}")
    deadline = time.monotonic() + a.flow_timeout
    while True:
        execs = all_executions(api, flow_id)
        ended = [e for e in execs if e["status"] in ("succeeded", "failed", "cancelled")]
        if ended:
            if ended[0]["status"] != "succeeded":
                raise RuntimeError(f"history execution ended {ended[0]['status']}: {str(ended[0])[:300]}")
            print(ended[0]["id"])
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"history execution not ended after {a.flow_timeout} s: {str(execs)[:300]}")
        time.sleep(0.1)


def cmd_list_executions(a):
    """Times `GET /executions?page[size]=10` (the API's default view: newest first, as the
    token's user sees them): one warm-up call, then --calls calls one after another; records
    the median."""
    api = Api(a.base, a.token)
    path = "/executions?" + urllib.parse.urlencode({"page[size]": 10})
    api.ok("GET", path)
    times, totals = [], set()
    for _ in range(a.calls):
        t0 = time.perf_counter()
        data = api.ok("GET", path)
        times.append((time.perf_counter() - t0) * 1000)
        totals.add(data["meta"]["total"])
        if len(data["data"]) != min(10, data["meta"]["total"]):
            raise RuntimeError(f"GET {path}: {len(data['data'])} items for a total of {data['meta']['total']}")
    notes = [f"median of {a.calls} calls, min {min(times):.1f} ms, max {max(times):.1f} ms; "
             f"meta.total {', '.join(str(t) for t in sorted(totals))}"]
    if a.expect_total is not None and totals != {a.expect_total}:
        notes.append(f"expected a total of {a.expect_total}")
    if server_errors_note():
        notes.append(server_errors_note())
    if a.note:
        notes.append(a.note)
    record({"section": a.section, "workload": a.title, "kind": "duration", "value": median(times),
            "calls": a.calls, "total": sorted(totals), "note": "; ".join(notes)})


def cmd_w3(a):
    api = Api(a.base, a.token)
    total = api.ok("GET", "/flows")["meta"]["total"]
    missing = max(0, 10_000 - total)
    t0 = time.monotonic()
    create_many(api, [two_node_flow(f"bench-w3-{i}") for i in range(missing)])
    log(f"W3: created {missing} flows in {time.monotonic() - t0:.1f} s")
    total = api.ok("GET", "/flows")["meta"]["total"]
    flow_id = open(a.flow_file, encoding="ascii").read().strip()
    auth = {"Authorization": f"Bearer {a.token}"}
    points = [
        (f"W3 GET /flows/{{id}}, c={W3_CONCURRENCY}", f"/flows/{flow_id}", "GET", None),
        (f"W3 GET /flows (page of 10 of {total}), c={W3_CONCURRENCY}", "/flows", "GET", None),
        (f"W3 POST /flows, c={W3_CONCURRENCY}", "/flows", "POST", json.dumps(two_node_flow("bench-w3-post"))),
        (f"W3 POST /login, c={W3_CONCURRENCY}", "/login", "POST",
         json.dumps({"username": a.username, "password": a.password})),
    ]
    for title, path, method, body in points:
        headers = dict(auth) if path != "/login" else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        p = wrk_point(a.base + path, W3_CONCURRENCY, method=method, body=body, headers=headers)
        note = f"{p['errors']} of {p['requests']} requests failed" if p["errors"] else ""
        record({"section": a.section, "workload": title, "kind": "rps", "c": W3_CONCURRENCY, "note": note, **p})


def cmd_w4(a):
    api = Api(a.base, a.token)
    runs, failures = [], []
    for run in range(RUNS):
        ids = create_many(api, [two_node_flow(f"bench-w4-{run}-{i}") for i in range(W4_FLOWS)])
        work = queue.Queue()
        for i in ids:
            work.put(i)
        latencies, errors, lock = [], [], threading.Lock()

        def starter():
            while True:
                try:
                    flow_id = work.get_nowait()
                except queue.Empty:
                    return
                t0 = time.monotonic()
                try:
                    start_flow(api, flow_id, timeout=a.flow_timeout)
                    with lock:
                        latencies.append(time.monotonic() - t0)
                except (RuntimeError, OSError, http.client.HTTPException) as e:
                    with lock:
                        errors.append(str(e))

        t0 = time.monotonic()
        threads = [threading.Thread(target=starter) for _ in range(W4_STARTERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
        runs.append({"p50_ms": percentile(latencies, 50) * 1000 if latencies else None,
                     "p99_ms": percentile(latencies, 99) * 1000 if latencies else None,
                     "per_s": len(latencies) / wall, "ok": len(latencies), "errors": len(errors)})
        failures.extend(errors[:3])
        log("W4 run:", json.dumps(runs[-1]))
    note = ""
    if failures:
        note = f"{sum(r['errors'] for r in runs)} starts did not reach active: {failures[0][:200]}"
    if server_errors_note():
        note = "; ".join(n for n in (note, server_errors_note()) if n)
    record({"section": a.section, "workload": f"W4 start-to-active over {W4_FLOWS} flows ({W4_STARTERS} at a time)",
            "kind": "latency", "p50_ms": median([r["p50_ms"] for r in runs]),
            "p99_ms": median([r["p99_ms"] for r in runs]), "req_s": median([r["per_s"] for r in runs]),
            "errors": sum(r["errors"] for r in runs), "note": note})


def cmd_rss(a):
    pids = [int(p) for p in a.pids.split(",")]
    values = [rss_kib(p) for p in pids]
    if any(v is None for v in values):
        raise RuntimeError(f"cannot read VmRSS of {pids}")
    record({"section": a.section, "workload": a.title, "kind": "rss", "value": sum(values)})


def cmd_note(a):
    record({"section": a.section, "workload": a.title, "kind": a.kind, "note": a.text})


# ---------------------------------------------------------------------------------------------
# Table


def fmt_rps(v):
    return "n/a" if v is None else f"{v:,.0f} req/s" if v >= 100 else f"{v:,.1f} req/s"


def fmt_ms(v):
    return "n/a" if v is None else f"{v:.2f} ms" if v < 10 else f"{v:.1f} ms" if v < 100 else f"{v:,.0f} ms"


def cmd_table(a):
    rows = [json.loads(line) for line in open(a.results, encoding="utf-8") if line.strip()]
    ceilings = {(r["ceiling"], r["c"]): r["req_s"] for r in rows if r.get("section") == "ceiling"}
    durable = a.durable
    sections = {"ceiling": "ceilings (this machine)", "embedded": "FlowMate embedded (SQLite, in-process bus)",
                "pg": "FlowMate PostgreSQL + Kafka (1 api, 2 workers)",
                "scaling": "scaling on PostgreSQL + Kafka (W2)",
                "failover": "failover on PostgreSQL + Kafka (W2, a worker killed)"}
    out = [f"| workload | FlowMate | ratio to bare axum | ratio to durable SQLite ({durable}) |",
           "| --- | --- | --- | --- |"]

    def ratio(v, name, c):
        base = ceilings.get((name, c))
        return f"{v / base:.2g}" if v is not None and base else "—"

    for key, title in sections.items():
        part = [r for r in rows if r.get("section") == key]
        if not part:
            continue
        out.append(f"| **{title}** | | | |")
        for r in part:
            kind, figure = r.get("kind"), ""
            if kind == "rps":
                figure = fmt_rps(r.get("req_s")).replace("req/s", r.get("unit", "req/s"))
                if r.get("p50_ms") is not None:
                    figure += f", p50 {fmt_ms(r['p50_ms'])}, p99 {fmt_ms(r.get('p99_ms'))}"
            elif kind == "latency":
                figure = f"p50 {fmt_ms(r.get('p50_ms'))}, p99 {fmt_ms(r.get('p99_ms'))}"
                if r.get("req_s"):
                    figure += f" ({r['req_s']:.0f} starts/s)"
            elif kind == "rss":
                figure = f"{r['value'] / 1024:.1f} MiB"
            elif kind == "startup":
                figure = f"{fmt_ms(r['value'])} to the first 200"
            elif kind == "duration":
                figure = f"{fmt_ms(r.get('value'))} per call"
            elif kind == "finding":
                figure = "not measured"
            if kind == "info":
                figure = r.get("note", "")
            elif r.get("note"):
                figure += f" — {r['note']}"
            if key == "ceiling" or kind != "rps":
                r_bare = r_dur = "—"
            else:
                r_bare = ratio(r.get("req_s"), "bare", r.get("c"))
                r_dur = ratio(r.get("req_s"), f"durable-{durable}", r.get("c"))
            out.append(f"| {r['workload']} | {figure.replace('|', '/')} | {r_bare} | {r_dur} |")
    table = "\n".join(out) + "\n"
    with open(a.out, "w", encoding="utf-8") as f:
        f.write(a.header.replace("\\n", "\n") + "\n\n" + table if a.header else table)
    print(table, end="")


def cmd_compare_table(a):
    """The table of scripts/bench-compare: W1 req/s and p99 per build and concurrency, each
    round's figure and the mean of the rounds (sections are '<build>|<round>')."""
    rows = [json.loads(line) for line in open(a.results, encoding="utf-8") if line.strip()]
    builds, figures = [], {}
    for r in rows:
        if r.get("kind") != "rps" or "|" not in r.get("section", ""):
            continue
        build, _, _round = r["section"].rpartition("|")
        if build not in builds:
            builds.append(build)
        figures.setdefault((build, r["c"]), []).append((r["req_s"], r["p99_ms"]))
    lines = [a.header, "", "| build | " + " | ".join(f"c={c} req/s | c={c} p99" for c in W1_CONCURRENCY) + " |",
             "| --- |" + " --- | --- |" * len(W1_CONCURRENCY)]
    for build in builds:
        cells = []
        for c in W1_CONCURRENCY:
            points = figures.get((build, c), [])
            rps = [p[0] for p in points]
            p99 = [p[1] for p in points]
            cells.append(f"{statistics.mean(rps):,.0f} ({' / '.join(f'{v:,.0f}' for v in rps)})" if rps else "-")
            cells.append(f"{fmt_ms(statistics.mean(p99))} ({' / '.join(fmt_ms(v) for v in p99)})" if p99 else "-")
        lines.append(f"| {build} | " + " | ".join(cells) + " |")
    for build in builds[1:]:
        ratios = []
        for c in W1_CONCURRENCY:
            first, other = figures.get((builds[0], c)), figures.get((build, c))
            if first and other:
                ratio = statistics.mean(p[0] for p in other) / statistics.mean(p[0] for p in first)
                ratios.append(f"c={c}: {ratio:.2f}x")
        lines += ["", f"{build} / {builds[0]}, req/s: " + ", ".join(ratios)]
    text = "\n".join(lines) + "\n"
    with open(a.out, "w", encoding="utf-8") as f:
        f.write(text)
    print(text)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    s = sub.add_parser("spawn")
    s.add_argument("--pidfile", required=True)
    s.add_argument("--log", required=True)
    s.add_argument("--ready", required=True)
    s.add_argument("--timeout", type=float, default=60)
    s.add_argument("--label", default="server")
    s.add_argument("--record")
    s.add_argument("--section", default="embedded")
    s.add_argument("--env", action="append")
    s.add_argument("cmd", nargs="+")
    s.set_defaults(fn=cmd_spawn)

    s = sub.add_parser("login")
    s.add_argument("--base", required=True)
    s.add_argument("--username", default="admin")
    s.add_argument("--password", required=True)
    s.set_defaults(fn=lambda a: print(login(a.base, a.username, a.password)))

    s = sub.add_parser("ceiling")
    s.add_argument("--name", required=True)
    s.add_argument("--title", required=True)
    s.add_argument("--url", required=True)
    s.set_defaults(fn=cmd_ceiling)

    for name, fn in (("w1", cmd_w1), ("w2", cmd_w2), ("w3", cmd_w3), ("w4", cmd_w4), ("w6", cmd_w6)):
        s = sub.add_parser(name)
        s.add_argument("--base", required=True)
        s.add_argument("--token", required=True)
        s.add_argument("--section", default="embedded")
        s.add_argument("--flow-file", default=os.path.join(WORK, "w1-flow"))
        s.add_argument("--rss-pids", default="")
        s.add_argument("--username", default="admin")
        s.add_argument("--password", default="")
        s.add_argument("--drain-timeout", type=float, default=180)
        s.add_argument("--flow-timeout", type=float, default=60)
        s.add_argument("--title", default="",
                       help="w2: prefix of the rows' workload titles ('<title>: accepted, c=16', "
                            "'<title>: completed ...') instead of the default ones")
        s.set_defaults(fn=fn)

    s = sub.add_parser("failover")
    s.add_argument("--base", required=True)
    s.add_argument("--token", required=True)
    s.add_argument("--section", default="scaling")
    s.add_argument("--kill-pid", type=int, required=True)
    s.add_argument("--kill-after", type=float, default=10)
    s.add_argument("--duration", type=int, default=40)
    s.add_argument("--drain-timeout", type=float, default=180)
    s.set_defaults(fn=cmd_failover)

    s = sub.add_parser("history")
    s.add_argument("--base", required=True)
    s.add_argument("--token", required=True)
    s.add_argument("--flow-timeout", type=float, default=60)
    s.set_defaults(fn=cmd_history)

    s = sub.add_parser("list-executions")
    s.add_argument("--base", required=True)
    s.add_argument("--token", required=True)
    s.add_argument("--section", default="embedded")
    s.add_argument("--title", required=True)
    s.add_argument("--calls", type=int, default=7)
    s.add_argument("--expect-total", type=int)
    s.add_argument("--note", default="")
    s.set_defaults(fn=cmd_list_executions)

    s = sub.add_parser("rss")
    s.add_argument("--pids", required=True)
    s.add_argument("--title", required=True)
    s.add_argument("--section", default="embedded")
    s.set_defaults(fn=cmd_rss)

    s = sub.add_parser("note")
    s.add_argument("--section", required=True)
    s.add_argument("--title", required=True)
    s.add_argument("--text", required=True)
    s.add_argument("--kind", choices=("finding", "info"), default="finding",
                   help="finding: 'not measured — TEXT'; info: TEXT alone")
    s.set_defaults(fn=cmd_note)

    s = sub.add_parser("compare-table")
    s.add_argument("--results", default=RESULTS)
    s.add_argument("--out", required=True)
    s.add_argument("--header", default="")
    s.set_defaults(fn=cmd_compare_table)

    s = sub.add_parser("table")
    s.add_argument("--results", default=RESULTS)
    s.add_argument("--out", required=True)
    s.add_argument("--durable", default="full")
    s.add_argument("--header", default="")
    s.set_defaults(fn=cmd_table)

    a = p.parse_args()
    if a.cmd not in ("w1", "w2", "w3", "w4", "list-executions"):
        a.fn(a)
        return
    # A workload FlowMate cannot run as specified is a finding in the table, not a crash.
    try:
        a.fn(a)
    except (RuntimeError, OSError, http.client.HTTPException, KeyError, ValueError) as e:
        log(f"{a.cmd} failed: {e}")
        title = getattr(a, "title", "") or a.cmd.upper()
        record({"section": a.section, "workload": f"{title} (could not run)", "kind": "finding",
                "note": " ".join(str(e).split())[:400]})


if __name__ == "__main__":
    main()
