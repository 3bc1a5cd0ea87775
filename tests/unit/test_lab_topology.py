"""The lab plan with HQ, and a second library joining it (pure)."""

from __future__ import annotations

import pytest

from gateway.lab.topology import HQ_IP, LabSpec, plan_lab, site_link


def test_hq_sits_behind_the_internet_only():
    plan = plan_lab(LabSpec(prefix="hs-x-", clients=1, hq=True))
    assert "hs-x-hq" in plan.namespaces
    links = {(v.ns_a, v.ns_b) for v in plan.veths}
    assert ("hs-x-up", "hs-x-hq") in links
    assert not any("hs-x-hq" in pair and ("hs-x-gw" in pair or "hs-x-ap" in pair) for pair in links)
    assert ("hs-x-hq", "default", "198.51.100.1") in plan.routes


def test_a_second_library_links_its_internet_to_the_other_labs_hq():
    plan = plan_lab(LabSpec(prefix="hs-y-", clients=1, hq_of="hs-x-", site=3))
    assert "hs-x-hq" not in plan.namespaces  # it links into it, never owns it
    assert any(v.ns_a == "hs-y-up" and v.ns_b == "hs-x-hq" for v in plan.veths)
    near, far = site_link(3)
    assert (near, far) == ("198.51.103.1", "198.51.103.10")
    assert ("hs-y-up", HQ_IP, far) in plan.routes


@pytest.mark.parametrize(
    "kwargs",
    [{"hq_of": "hs-y-", "site": 1}, {"hq_of": "hs-x-", "site": 0}, {"hq_of": "hs-x-", "site": 1, "hq": True}],
)
def test_bad_joins_are_refused(kwargs):
    with pytest.raises(ValueError):
        LabSpec(prefix="hs-y-", clients=1, **kwargs)
