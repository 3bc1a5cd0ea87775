from gateway.model.ratelimit import Limit, acquire, check, library_key, record_failure, reset, settle

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


# --- the atomic pair the voucher login uses (issue 16, item 8) ---

ATOMIC = Limit("voucher", max_failures=5, window=600, lockout=60, max_lockout=3600, per_minute=30)
NOW = 1_800_000_000.0  # the start of a minute


def test_a_success_does_not_reset_the_failures(r):
    whos = ("mac:02:00:00:00:01:02", "ip:10.42.0.102")
    evaluated_wrong = 0
    for _ in range(40):  # wrong, right (own voucher), wrong, right, ...
        wait, _ = acquire(r, ATOMIC, whos, NOW)
        if not wait:
            evaluated_wrong += 1
            settle(r, ATOMIC, whos, NOW, ok=False)
        wait, _ = acquire(r, ATOMIC, whos, NOW)
        if not wait:
            settle(r, ATOMIC, whos, NOW, ok=True)
    assert evaluated_wrong == 5


def test_parallel_guesses_are_bounded_by_the_budget(r):
    from concurrent.futures import ThreadPoolExecutor

    whos = ("mac:02:00:00:00:01:03", "ip:10.42.0.103")
    with ThreadPoolExecutor(32) as pool:
        results = list(pool.map(lambda _: acquire(r, ATOMIC, whos, NOW)[0], range(128)))
    assert results.count(0) == 5, "exactly the budget is evaluated, however many arrive at once"
    assert 55 <= check(r, ATOMIC, whos[0]) <= 60


def test_fresh_macs_and_ips_share_a_library_wide_bound(r):
    evaluated = 0
    for i in range(200):  # a new MAC and IP for every guess
        whos = (f"mac:02:00:00:00:{i // 256:02x}:{i % 256:02x}", f"ip:10.42.{i // 256}.{i % 256}")
        wait, library_wide = acquire(r, ATOMIC, whos, NOW + 10)
        if not wait:
            evaluated += 1
            settle(r, ATOMIC, whos, NOW + 10, ok=False)
        else:
            assert library_wide and wait == 50
    assert evaluated == 30
    assert acquire(r, ATOMIC, ("mac:02:00:00:00:ff:ff", "ip:10.42.9.9"), NOW + 61) == (0, False), (
        "next minute"
    )


def test_successes_give_back_their_own_reservation_library_wide(r):
    for i in range(100):
        whos = (f"mac:02:00:00:00:02:{i:02x}", f"ip:10.42.2.{i}")
        assert acquire(r, ATOMIC, whos, NOW) == (0, False)
        settle(r, ATOMIC, whos, NOW, ok=True)
    assert r.get(library_key(ATOMIC, NOW)) == "0"


def _burst(r, n: int, ok: bool, tag: int) -> list[tuple[int, bool]]:
    """``n`` devices at once, each looking its code up for 20 ms; return each acquire's answer."""
    import time
    from concurrent.futures import ThreadPoolExecutor

    def one(i: int) -> tuple[int, bool]:
        whos = (f"mac:02:00:00:00:{tag:02x}:{i:02x}", f"ip:10.{tag}.0.{i}")
        got = acquire(r, ATOMIC, whos, NOW + 5)
        if got == (0, False):
            time.sleep(0.02)
            settle(r, ATOMIC, whos, NOW + 5, ok=ok)
        return got

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def test_a_class_typing_right_codes_at_once_is_not_refused(r):
    # 40 right codes in flight together fill the library-wide bound for a moment only
    assert _burst(r, 40, ok=True, tag=3) == [(0, False)] * 40
    assert r.get(library_key(ATOMIC, NOW + 5)) == "0"


def test_a_burst_of_wrong_codes_from_made_up_devices_gets_the_bound_only(r):
    answers = _burst(r, 64, ok=False, tag=4)
    assert answers.count((0, False)) == 30, "in-flight attempts count: the burst cannot overshoot"
    assert all(library_wide for wait, library_wide in answers if wait)


def test_an_attempt_waiting_for_the_bound_is_woken_by_a_settle_not_a_timer(r, monkeypatch):
    import threading

    from gateway.model import ratelimit

    monkeypatch.setattr(ratelimit, "WAKE_EVERY", 30.0)  # only a settle can wake it in time
    whos = [(f"mac:02:00:00:00:05:{i:02x}", f"ip:10.5.0.{i}") for i in range(31)]
    for who in whos[:30]:  # the bound full of attempts in flight
        assert acquire(r, ATOMIC, who, NOW + 5) == (0, False)
    got, looks, run = [], [], ratelimit._run

    def counted(client, text, script_keys, args):
        if text == ratelimit._ACQUIRE and threading.current_thread() is waiter:
            looks.append(1)
        return run(client, text, script_keys, args)

    monkeypatch.setattr(ratelimit, "_run", counted)
    waiter = threading.Thread(target=lambda: got.append(acquire(r, ATOMIC, whos[30], NOW + 5, patience=20)))
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive(), "it waits while the bound is full of attempts in flight"
    settle(r, ATOMIC, whos[0], NOW + 5, ok=True)  # a right code: its reservation goes back
    waiter.join(5)
    assert not waiter.is_alive() and got == [(0, False)]
    assert len(looks) == 2, "it looked once, slept until the settle, and looked once more (no polling)"
