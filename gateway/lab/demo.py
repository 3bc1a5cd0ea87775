"""``make demo``: bring the lab up and walk one phone through a library visit, step by step.

Each step prints what a person would see or do and what the system did; the lab
stays up afterwards for exploring (``make lab-down`` stops it).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.lab.demo_visit import VISIT_STEPS, step_fresh_phone
from gateway.lab.lab import Lab, LabError
from gateway.lab.topology import UPSTREAM_IP, LabSpec
from gateway.lab.upstream import UPSTREAM_MARKER
from gateway.logs import warnings_to_stderr

__all__ = ["Demo", "main"]


@dataclass
class Demo:
    """The running walk-through: the lab, the phone used, and what the steps found."""

    lab: Lab
    phone: str
    facts: dict[str, str] = field(default_factory=dict)
    step_no: int = 0

    def step(self, title: str) -> None:
        self.step_no += 1
        print(f"\n[{self.step_no}] {title}", flush=True)

    def say(self, line: str) -> None:
        print(f"    {line}", flush=True)

    def curl(self, url: str, *extra: str) -> tuple[int, str, str]:
        """Fetch ``url`` from the phone: (status, redirect location, body)."""
        out = self.lab.exec(
            self.phone, "curl", "-s", "-m", "5", "-w", "\n%{http_code} %{redirect_url}", *extra, url
        ).stdout
        body, _, meta = out.rpartition("\n")
        status, _, location = meta.partition(" ")
        return int(status or 0), location, body


def step_lab_up(demo: Demo) -> None:
    demo.step("Bringing the lab up: a router, an access point, the 'internet' and phones")
    started = time.monotonic()
    demo.lab.up(say=demo.say)
    demo.say(f"lab ready in {time.monotonic() - started:.1f}s (config: {demo.lab.config_path})")


def step_dhcp(demo: Demo) -> None:
    demo.step(f"A visitor's phone ({demo.phone}) joins the library Wi-Fi")
    ip = demo.lab.client_ip(demo.phone)
    if ip is None:
        raise LabError(f"{demo.phone} got no DHCP lease; see {demo.lab.log_dir}/dhcp-c1.log")
    demo.facts["ip"] = ip
    demo.say(f"DHCP from the router's dnsmasq gave it {ip}, gateway and DNS 10.42.0.1")


def step_dns(demo: Demo) -> None:
    demo.step("The phone looks up a web site through the router's DNS")
    out = demo.lab.exec(demo.phone, "getent", "ahostsv4", "example.com").stdout.split()
    demo.say(f"example.com -> {out[0] if out else 'no answer'} (the lab's internet is {UPSTREAM_IP})")


def step_probe(demo: Demo) -> None:
    demo.step("Its OS checks for a captive portal (Android's probe)")
    status, location, _ = demo.curl("http://connectivitycheck.gstatic.com/generate_204")
    if status == 302:
        demo.say(f"302 -> {location}: the phone opens its sign-in window on the portal")
    else:
        demo.say(f"{status}: the probe reached the internet (no portal in the way yet)")


def step_browse(demo: Demo) -> None:
    demo.step("The visitor opens http://example.com/")
    status, location, body = demo.curl("http://example.com/")
    if UPSTREAM_MARKER in body:
        demo.say(f"{status}: the page came from the internet")
    else:
        demo.say(f"{status} {location}: sent to the portal")


# Later capabilities add their steps here, in visit order.
STEPS: list[Callable[[Demo], None]] = [
    step_lab_up, step_dhcp, step_fresh_phone, step_dns, step_probe, step_browse, *VISIT_STEPS,
]  # fmt: skip


def where_next(demo: Demo) -> None:
    print(
        "\nThe lab stays up. Things to try:\n"
        "  .venv/bin/hotspotctl lab status                 what runs where\n"
        "  .venv/bin/hotspotctl lab exec c2 curl -si http://example.com/   phone 2, not online\n"
        f"  .venv/bin/hotspotctl --config {demo.lab.config_path} clients      who is online\n"
        f"  .venv/bin/hotspotctl --config {demo.lab.config_path} top          live rates\n"
        f"  logs: {demo.lab.log_dir}/\n"
        "  make lab-down                                   stop it all\n",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the walk-through; return 0, or 1 with one plain line if a step failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--prefix", default="hs-", help='lab prefix (a second lab: e.g. "hs-x-")')
    args = parser.parse_args(argv)
    warnings_to_stderr()  # the steps print what happens; the domain's info lines would clutter it
    lab = Lab(LabSpec(prefix=args.prefix, clients=args.clients))
    demo = Demo(lab=lab, phone=lab.spec.client(1))
    print("PerpuSeru Hotspot demo: one visit to a library, in network namespaces", flush=True)
    try:
        for step in STEPS:
            step(demo)
    except LabError as err:
        print(f"\ndemo stopped: {err}", file=sys.stderr)
        return 1
    where_next(demo)
    return 0


if __name__ == "__main__":
    sys.exit(main())
