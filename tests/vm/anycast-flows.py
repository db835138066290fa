#!/usr/bin/python3
"""Real servers and clients for tests/vm/anycast-lab.sh (in the guest).

  anycast-flows.py serve NAME            echo server on :80; says NAME first
  anycast-flows.py hold VIP N SPORT SECS OUT
      opens N connections to VIP:80 from source ports SPORT.., then every 0.2 s
      sends a line on each and expects it back, for SECS seconds; a connection
      that is reset or closed is broken. Writes OUT (JSON) at the end; touches
      OUT.ready once all are established.
  anycast-flows.py burst VIP N SPORT     N short connections; prints the real
      server of each (one line per connection)
"""
import json
import os
import select
import socket
import sys
import threading
import time


def serve(name):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", 80))
    s.listen(1024)

    def handle(c):
        try:
            c.sendall((name + "\n").encode())
            while True:
                d = c.recv(4096)
                if not d:
                    break
                c.sendall(d)
        except OSError:
            pass
        finally:
            c.close()

    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()


def connect(vip, sport, timeout=5.0):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", sport))
    s.settimeout(timeout)
    s.connect((vip, 80))
    line = b""
    while not line.endswith(b"\n"):
        d = s.recv(64)
        if not d:
            raise OSError("closed before the greeting")
        line += d
    return s, line.decode().strip()


def hold(vip, n, sport, secs, out):
    conns = []
    failed_open = 0
    for i in range(n):
        try:
            s, rs = connect(vip, sport + i)
            s.setblocking(False)
            conns.append({"s": s, "sport": sport + i, "rs": rs, "broken": None, "last_ok": time.time(), "buf": b"", "max_gap": 0.0})
        except OSError:
            failed_open += 1
    open(out + ".ready", "w").close()
    t0 = time.time()
    seq = 0
    while time.time() - t0 < secs:
        seq += 1
        msg = ("%d\n" % seq).encode()
        live = [c for c in conns if c["broken"] is None]
        for c in live:
            try:
                c["s"].send(msg)
            except OSError as e:
                c["broken"] = "send: %s at %.1f s" % (e, time.time() - t0)
        end = time.time() + 0.2
        while time.time() < end:
            rd = [c["s"] for c in live if c["broken"] is None]
            if not rd:
                break
            r, _, _ = select.select(rd, [], [], max(0.0, end - time.time()))
            for c in live:
                if c["s"] in r:
                    try:
                        d = c["s"].recv(4096)
                    except OSError as e:
                        c["broken"] = "recv: %s at %.1f s" % (e, time.time() - t0)
                        continue
                    if not d:
                        c["broken"] = "closed at %.1f s" % (time.time() - t0)
                        continue
                    c["buf"] += d
                    if c["buf"].endswith(msg):
                        now = time.time()
                        c["max_gap"] = max(c["max_gap"], now - c["last_ok"])
                        c["last_ok"] = now
                        c["buf"] = b""
    # A last round trip, given time (a flow that moved may wait on a retransmission).
    final = ("end\n").encode()
    for c in conns:
        if c["broken"] is None:
            try:
                c["s"].setblocking(True)
                c["s"].settimeout(5)
                c["s"].sendall(final)
                got = b""
                while not got.endswith(final):
                    d = c["s"].recv(4096)
                    if not d:
                        raise OSError("closed")
                    got += d
            except OSError as e:
                c["broken"] = "final: %s" % e
    res = {
        "established": len(conns),
        "failed_open": failed_open,
        "survived": sum(1 for c in conns if c["broken"] is None),
        "broken": [{"sport": c["sport"], "rs": c["rs"], "why": c["broken"]} for c in conns if c["broken"]],
        "by_rs": {},
        "max_gap_s": round(max([c["max_gap"] for c in conns] or [0]), 2),
    }
    for c in conns:
        res["by_rs"][c["rs"]] = res["by_rs"].get(c["rs"], 0) + 1
    with open(out + ".tmp", "w") as f:
        json.dump(res, f)
    os.rename(out + ".tmp", out)


def burst(vip, n, sport):
    for i in range(n):
        try:
            s, rs = connect(vip, sport + i)
            print(sport + i, rs)
            s.close()
        except OSError as e:
            print(sport + i, "error:", e)


if __name__ == "__main__":
    a = sys.argv[1:]
    if a[0] == "serve":
        serve(a[1])
    elif a[0] == "hold":
        hold(a[1], int(a[2]), int(a[3]), float(a[4]), a[5])
    elif a[0] == "burst":
        burst(a[1], int(a[2]), int(a[3]))
    else:
        sys.exit("usage: see the module docstring")
