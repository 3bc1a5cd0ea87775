"""The fleet: central login vs local voucher, and accounting drain to the real FreeRADIUS + PostgreSQL.

``sudo .venv/bin/python -m bench.fleet [--prefix hs-rb-] [--rounds 20] [--records 3000]``
builds its own lab with HQ (``hotspotctl lab up --hq``), measures, and removes it.

1. Login: the visitor's form POST -> "you are online" page (the portal answers after the
   gateway's ack), a local voucher and a central code (Access-Request to HQ) side by side,
   alternating A-B-A-B in one run; the difference of the medians is what HQ adds.
2. Drain: ``--records`` accounting records (half Start, half Stop) queued in the router's
   outbox, then sent by the same Sender the gateway runs (inside the router's namespace),
   one at a time; records per second until the outbox is empty, and a check that
   ``radacct`` got every session once.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from gateway.lab.lab import Lab
from gateway.lab.topology import LabSpec
from gateway.model.store import connect
from gateway.model.vouchers import issue_batch

HERE = Path(__file__).parent

_DRAIN = """
import json, sys, time
from gateway.config import load
from gateway.model.store import connect
from gateway.radius.accounting import OUTBOX, Sender, outbox_record
config = load(sys.argv[1]); n = int(sys.argv[2]); r = connect(config)
now = time.time(); pipe = r.pipeline()
for i in range(n // 2):
    f = {"sid": f"bench-{int(now)}-{i:06d}", "time": repr(now - 86400 + i), "kind": "voucher",
         "voucher_id": "v", "mac": "02:00:00:00:01:01", "ip": "10.42.0.100", "bytes_up": "100",
         "bytes_down": "1000", "duration": "60.0", "reason": "logout"}
    pipe.xadd(OUTBOX, outbox_record("Start", f)); pipe.xadd(OUTBOX, outbox_record("Stop", f))
pipe.execute()
sender = Sender(r, config); started = time.monotonic()
while r.xlen(OUTBOX):
    sender.send_pending()
print(json.dumps({"records": n, "seconds": time.monotonic() - started, "prefix": f"bench-{int(now)}-"}))
"""


def _pct(values: list[float]) -> dict:
    values = sorted(values)
    if not values:
        return {}
    return {
        "p50": round(statistics.median(values), 2),
        "p95": round(values[min(len(values) - 1, int(len(values) * 0.95))], 2),
        "n": len(values),
    }


def _logins(lab: Lab, code: str, rounds: int) -> list[float]:
    argv = [lab.python, str(HERE / "_login_timing.py"), "--portal", lab.config().portal.url, "--code", code,
            "--rounds", str(rounds)]  # fmt: skip
    out = lab.exec(lab.spec.client(1), *argv, timeout=rounds * 12 + 30, check=True).stdout
    rows = json.loads(out.strip().splitlines()[-1])["rounds"]
    return [row["login_ms"] for row in rows if row["status"] == 303]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.fleet")
    parser.add_argument("--prefix", default="hs-rb-")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--records", type=int, default=3000)
    args = parser.parse_args(argv)
    lab = Lab(LabSpec(prefix=args.prefix, clients=1, hq=True))
    lab.down(wipe=True)
    try:
        lab.up()
        config = lab.config()
        lab.hq.add_user("BENCH-CENTRAL", "BENCH-CENTRAL", {"Session-Timeout": "3600"})
        [voucher] = issue_batch(
            connect(config), config.plans["harian"], 1, now=time.time(), issued_by="bench"
        )
        local: list[float] = []
        central: list[float] = []
        for _ in range(2):  # A-B-A-B in one run
            local += _logins(lab, voucher.code, args.rounds)
            central += _logins(lab, "BENCH-CENTRAL", args.rounds)
        lab.stop("gateway")  # its own sender must not share the work
        out = lab.exec(lab.spec.gw, lab.python, "-c", _DRAIN, str(lab.config_path), str(args.records),
                       timeout=600, check=True).stdout  # fmt: skip
        drain = json.loads(out.strip().splitlines()[-1])
        rows = lab.hq.sql(
            f"SELECT count(*) FROM radacct WHERE acctsessionid LIKE '{drain['prefix']}%'"
        ).strip()
        result = {
            "login_local_ms": _pct(local),
            "login_central_ms": _pct(central),
            "central_adds_p50_ms": round(statistics.median(central) - statistics.median(local), 2),
            "drain_records_per_s": round(drain["records"] / drain["seconds"]),
            "drain_seconds": round(drain["seconds"], 2),
            "radacct_sessions": int(rows),
            "expected_sessions": args.records // 2,
        }
    finally:
        lab.down(wipe=True)
    print(json.dumps(result, indent=2))
    return 0  # measured (`make bench` counts a non-zero return as not measured)


if __name__ == "__main__":
    raise SystemExit(main())
