from gateway.model.ratelimit import Limit, check, record_failure, reset

LIMIT = Limit("voucher", max_failures=3, window=600, lockout=60, max_lockout=200)


def test_failures_lock_then_double(r):
    who = "mac:02:00:00:00:01:01"
    assert [record_failure(r, LIMIT, who) for _ in range(3)] == [0, 0, 60]
    assert 55 <= check(r, LIMIT, who) <= 60
    r.delete("hs:rl:voucher:" + who + ":locked")
    assert [record_failure(r, LIMIT, who) for _ in range(3)] == [0, 0, 120]
    r.delete("hs:rl:voucher:" + who + ":locked")
    assert [record_failure(r, LIMIT, who) for _ in range(3)] == [0, 0, 200], "capped"


def test_success_resets(r):
    who = "ip:10.42.0.100"
    for _ in range(3):
        record_failure(r, LIMIT, who)
    reset(r, LIMIT, who)
    assert check(r, LIMIT, who) == 0
    assert record_failure(r, LIMIT, who) == 0
