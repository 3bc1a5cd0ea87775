"""Config snippets that must load, and broken ones that must fail naming file and key."""

from pathlib import Path

import pytest

from gateway import config as config_mod
from gateway.lab.topology import LabSpec

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """
[library]
id = "sukabumi"
name = "Perpustakaan Daerah Sukabumi"

[network]
lan_interface = "lan0"
wan_interface = "wan0"
lan_address = "10.42.0.1/24"

[uplink]
down = "10mbit"
up = "10mbit"
"""


def check_config_success(text: str) -> config_mod.Config:
    return config_mod.loads(text, "hotspot.toml")


def check_config_failure(text: str, *expected: str) -> list[str]:
    with pytest.raises(config_mod.ConfigError) as caught:
        config_mod.loads(text, "hotspot.toml")
    lines = caught.value.lines()
    for want in expected:
        assert any(want in line for line in lines), f"{want!r} not in {lines}"
    assert all(line.startswith("hotspot.toml: ") for line in lines)
    return lines


def test_minimal_config_gets_defaults():
    config = check_config_success(MINIMAL)
    assert config.portal.url == "http://10.42.0.1:8080"
    assert config.portal.api_url == "http://10.42.0.1:8080/api/captive"
    assert str(config.dhcp.range_start) == "10.42.0.100"
    assert config.gateway.idle_timeout == 900
    assert config.library.timezone == "Asia/Jakarta"
    assert config.portal.languages == ("id", "en")
    assert config.plans == {}
    # issue 16: short leases, DNS before login bounded, the desk and SSH on the admin side only
    assert config.dhcp.lease_time == 600 and config.dhcp.pool_size == 154
    assert (config.dhcp.dns_before_login, config.dhcp.dns_before_login_total) == (2_000, 32_000)
    assert config.network.admin_networks == ()
    assert {str(n) for n in config.desk.networks} == {"127.0.0.0/8", "::1/128"}


def test_example_config_loads():
    config = config_mod.load(ROOT / "docs" / "hotspot.example.toml")
    assert set(config.plans) == {"harian", "kelas", "gratis"}
    harian = config.plans["harian"]
    assert (harian.duration, harian.down, harian.up, harian.max_devices) == (7200, 4_000_000, 2_000_000, 1)
    assert config.plans["gratis"].quota == 200_000_000
    assert harian.label_for("en") == "Daily (2 hours)"


def test_lab_template_renders_a_valid_config(tmp_path):
    from gateway.lab.topology import lab_config_text

    rendered = lab_config_text(tmp_path, LabSpec().prefix)
    config = config_mod.loads(rendered, tmp_path / "hotspot.toml")
    assert config.network.netns == "hs-gw"
    assert config.redis_url == f"unix://{tmp_path}/redis.sock"
    assert config.portal.free_plan == "gratis"


def test_relative_paths_resolve_against_the_file(tmp_path):
    path = tmp_path / "etc" / "hotspot.toml"
    path.parent.mkdir()
    path.write_text(MINIMAL + '[paths]\nstate_dir = "state"\n[redis]\nurl = "unix://run/r.sock"\n')
    config = config_mod.load(path)
    assert config.paths.state_dir == tmp_path / "etc" / "state"
    assert config.redis_url == f"unix://{tmp_path}/etc/run/r.sock"
    assert config.portal.secret_key_file == tmp_path / "etc" / "state" / "secret_key"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            '[plans.harian]\nduration = "2h"\ndown = "10 mbps"\nup = "1mbit"\n',
            'plans.harian.down: "10 mbps" is not a rate; use e.g. "10mbit"',
        ),
        ('[plans.harian]\ndown = "1mbit"\nup = "1mbit"\n', "plans.harian.duration: is required"),
        (
            '[plans.harian]\nduraton = "2h"\nduration = "2h"\ndown = "1mbit"\nup = "1mbit"\n',
            'plans.harian.duraton: unknown key; did you mean "duration"?',
        ),
        ('[plans.Harian]\nduration = "2h"\ndown = "1mbit"\nup = "1mbit"\n', "plans.Harian: plan names"),
        ("[portla]\nport = 80\n", 'portla: unknown section; did you mean "portal"?'),
        ("[portal]\nport = 99999\n", "portal.port: 99999 is out of range"),
        ('[portal]\nport = "80"\n', "portal.port: expected a whole number, got a string"),
        ('[portal]\nfree_plan = "gratis"\n', 'portal.free_plan: no plan named "gratis"'),
        ('[portal]\ndefault_language = "fr"\n', 'portal.default_language: "fr" is not a supported language'),
        ('[portal]\ntls_cert = "cert.pem"\n', "portal.tls_key: tls_cert and tls_key go together"),
        ('[gateway]\nidle_timeout = "soon"\n', 'gateway.idle_timeout: "soon" is not a duration'),
        ('[redis]\nurl = "localhost:6379"\n', "redis.url: "),
        ('[dhcp]\nrange_start = "10.43.0.5"\n', "dhcp.range_start: 10.43.0.5 is outside the LAN"),
        ('[dhcp]\nlease_time = "1m"\n', "dhcp.lease_time: dnsmasq's shortest lease is 2 minutes"),
        ("[dhcp]\nper_device_per_minute = 1\n", "dhcp.per_device_per_minute: 1 is out of range"),
        ("[dhcp]\npool_low = 2\n", "dhcp.pool_low: 2 is out of range"),
        ('[dhcp]\ndns_before_login = "1kbit"\n', "dhcp.dns_before_login: must be between 3200 and"),
        ('[dhcp]\ndns_before_login = "512kbit"\n', "dhcp.dns_before_login_total: must not be below"),
        (
            '[[dhcp.reservations]]\nmac = "02:00:00:00:01"\nip = "10.42.0.10"\n',
            'dhcp.reservations[1].mac: "02:00:00:00:01" is not a MAC address',
        ),
        (
            '[[dhcp.reservations]]\nmac = "02:00:00:00:01:06"\nip = "10.43.0.10"\n',
            "dhcp.reservations[1].ip: 10.43.0.10 is not in the LAN",
        ),
        ('[[dhcp.reservations]]\nmac = "02:00:00:00:01:06"\n', "dhcp.reservations[1].ip: is required"),
        (
            '[[dhcp.reservations]]\nmac = "02:00:00:00:01:06"\nip = "10.42.0.10"\nname = "pc"\n',
            "dhcp.reservations[1].name: unknown key",
        ),
        (
            '[[dhcp.reservations]]\nmac = "02:00:00:00:01:06"\nip = "10.42.0.10"\n'
            '[[dhcp.reservations]]\nmac = "02:00:00:00:01:07"\nip = "10.42.0.10"\n',
            "dhcp.reservations[2].ip: 10.42.0.10 is reserved twice",
        ),
        ("[dhcp]\nreservations = 3\n", "dhcp.reservations: expected a list of tables"),
        ('[walled_garden]\nhosts = ["ok.id", "not a host"]\n', "walled_garden.hosts: item 2"),
        ('[desk]\nnetworks = ["10.42.0.10/32", "pc"]\n', 'desk.networks: item 2: "pc" is not a network'),
        ("[library]\n", "not valid TOML"),  # a table defined twice
    ],
)
def test_bad_values_name_the_key(extra, expected):
    check_config_failure(MINIMAL + extra, expected)


def test_every_problem_is_reported_at_once():
    text = MINIMAL.replace('"10mbit"', '"fast"').replace('"lan0"', '"this-name-is-far-too-long"')
    lines = check_config_failure(text, "uplink.down", "uplink.up", "network.lan_interface")
    assert len(lines) == 3


def test_timezone_is_checked():
    check_config_failure(
        MINIMAL.replace('name = "Perpustakaan Daerah Sukabumi"', 'name = "X"\ntimezone = "WIB"'),
        'library.timezone: "WIB" is not a time zone',
    )


def test_missing_file_and_bad_toml(tmp_path):
    with pytest.raises(config_mod.ConfigError, match="file not found"):
        config_mod.load(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[library\n")
    with pytest.raises(config_mod.ConfigError, match="not valid TOML"):
        config_mod.load(bad)


def test_config_check_cli(tmp_path):
    from click.testing import CliRunner

    from gateway.cli import cli

    bad = tmp_path / "hotspot.toml"
    bad.write_text(MINIMAL.replace('"10mbit"', '"10 mbps"', 1))
    result = CliRunner().invoke(cli, ["config", "check", str(bad)])
    assert result.exit_code == 2
    assert f'{bad}: uplink.down: "10 mbps" is not a rate; use e.g. "10mbit"' in result.output
    assert "Traceback" not in result.output
    good = CliRunner().invoke(cli, ["config", "check", str(ROOT / "docs" / "hotspot.example.toml")])
    assert good.exit_code == 0, good.output
    assert "OK (3 plans" in good.output


def test_daemons_refuse_a_bad_config(tmp_path):
    import subprocess
    import sys

    bad = tmp_path / "hotspot.toml"
    bad.write_text(MINIMAL + "[gateway]\nreconcile_interval = 5\n")
    for module in ("gateway.daemon", "portal"):
        result = subprocess.run(
            [sys.executable, "-m", module, "--config", str(bad)], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 2, (module, result.stderr)
        assert "gateway.reconcile_interval" in result.stderr
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("listen", "expected"),
    [
        ('"10.42.0.1:9110"', "metrics.listen: 10.42.0.1 is the LAN side"),
        ('"localhost:9110"', 'metrics.listen: "localhost:9110" is not address:port'),
        ('"127.0.0.1"', "metrics.listen: "),
        ('"127.0.0.1:70000"', "metrics.listen: "),
    ],
)
def test_metrics_listen_must_be_an_admin_side_address(listen, expected):
    check_config_failure(MINIMAL + f"[metrics]\nlisten = {listen}\n", expected)


@pytest.mark.parametrize("listen", ['""', '"127.0.0.1:9110"', '"[::1]:9110"', '"192.0.2.2:9110"'])
def test_metrics_listen_accepts_loopback_wan_or_off(listen):
    assert check_config_success(MINIMAL + f"[metrics]\nlisten = {listen}\n").metrics.listen == listen.strip(
        '"'
    )


def _with_library_keys(extra: str) -> str:
    return MINIMAL.replace('name = "Perpustakaan Daerah Sukabumi"', f'name = "P"\n{extra}')


def test_local_name_and_wifi_name():
    config = check_config_success(MINIMAL)
    assert config.portal.local_name == "wifi.perpus" and config.portal.short_url == "http://wifi.perpus"
    assert config.library.wifi_name == "", "no network name printed unless configured"
    text = _with_library_keys('wifi_name = "Perpus Sukabumi"')
    config = check_config_success(text + '[portal]\nlocal_name = "Wifi.Perpus-Sukabumi.ID."\n')
    assert config.portal.local_name == "wifi.perpus-sukabumi.id"
    assert config.library.wifi_name == "Perpus Sukabumi"
    off = check_config_success(MINIMAL + '[portal]\nlocal_name = ""\n')
    assert off.portal.short_url == off.portal.url == "http://10.42.0.1:8080"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("wifi", '"wifi" is not a local name like "wifi.perpus"'),
        ("10.42.0.1", '"10.42.0.1" is not a local name'),
        ("wifi perpus", '"wifi perpus" is not a local name'),
        ("perpus.local", '"perpus.local": ".local" belongs to mDNS'),
    ],
)
def test_bad_local_names(name, expected):
    check_config_failure(MINIMAL + f'[portal]\nlocal_name = "{name}"\n', f"portal.local_name: {expected}")


def test_bad_wifi_name():
    text = _with_library_keys(f'wifi_name = "{"x" * 33}"')
    check_config_failure(text, "library.wifi_name: ", "at most 32 bytes")


def test_no_radius_section_means_a_standalone_library():
    assert check_config_success(MINIMAL).radius is None


def test_radius_section_defaults():
    config = check_config_success(
        MINIMAL
        + '[radius]\nservers = ["198.51.100.10", "198.51.100.11:11812"]\nsecret_file = "radius.secret"\n'
    )
    radius = config.radius
    assert [(str(s.host), s.auth_port, s.acct_port) for s in radius.servers] == [
        ("198.51.100.10", 1812, 1813),
        ("198.51.100.11", 11812, 11813),
    ]
    assert radius.nas_identifier == "sukabumi"  # the library id
    assert radius.device_id == "hash"  # raw MACs stay on the router unless asked
    assert (radius.timeout, radius.retries, radius.auth_bound) == (1.0, 2, 4.0)
    assert radius.interim_interval == 300
    assert [str(a) for a in radius.dynauth_clients] == ["198.51.100.10", "198.51.100.11"]
    assert radius.secret_file.name == "radius.secret"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('servers = []\nsecret_file = "s"', "radius.servers: needs at least one server"),
        ('servers = ["hq.example"]\nsecret_file = "s"', "radius.servers"),
        ('servers = ["198.51.100.10:99999"]\nsecret_file = "s"', "is not a port"),
        ('servers = ["198.51.100.10"]', "radius.secret_file: is required"),
        ('servers = ["198.51.100.10"]\nsecret_file = "s"\ndevice_id = "imei"', "radius.device_id"),
        ('servers = ["198.51.100.10"]\nsecret_file = "s"\nsecert = "x"', "radius.secert: unknown key"),
        (
            'servers = ["198.51.100.10", "198.51.100.11"]\nsecret_file = "s"\ntimeout = 3.0\nretries = 3',
            "radius.timeout: timeout x retries x servers = 18s",
        ),
        (
            'servers = ["198.51.100.10"]\nsecret_file = "s"\ninterim_interval = "2d"',
            "radius.interim_interval",
        ),
    ],
)
def test_bad_radius_values_name_the_key(body, expected):
    check_config_failure(MINIMAL + "[radius]\n" + body + "\n", expected)


# -- the survey (portal.survey) -------------------------------------------------------

OWN_QUESTION = """
[[portal.survey.questions]]
id = "purpose"

[[portal.survey.questions]]
id = "heard"
text = { id = "Dari mana Anda tahu layanan ini?", en = "How did you hear of this service?" }
options = [
  { id = "friend", text = { id = "Dari teman", en = "From a friend" } },
  { id = "poster", text = "Poster" },
]
"""


def test_survey_defaults_to_the_programs_questions():
    survey = check_config_success(MINIMAL).portal.survey
    assert survey.enabled and [q.id for q in survey.asked] == ["purpose", "age", "gender", "business"]
    assert survey.questions[0].answers == ("study", "work", "school", "reading", "other")
    # age bands: 16_30 is youth as Indonesia's law on youth (UU 40/2009) defines it
    assert survey.questions[1].answers == ("under_16", "16_30", "31_45", "46_59", "60_plus")
    assert survey.questions[2].answers == ("female", "male", "unsaid")
    assert survey.questions[3].answers == ("yes", "no") and all(q.builtin for q in survey.questions)


def test_the_old_survey_switch_still_works():
    on = check_config_success(MINIMAL + "[portal]\nsurvey = true\n").portal.survey
    off = check_config_success(MINIMAL + "[portal]\nsurvey = false\n").portal.survey
    assert on == check_config_success(MINIMAL).portal.survey
    assert not off.enabled and off.asked == () and len(off.questions) == 4, (
        "off: older answers still reported"
    )


def test_survey_questions_by_id_and_a_librarys_own():
    picked = check_config_success(
        MINIMAL + '[portal.survey]\nquestions = ["gender", "purpose"]\n'
    ).portal.survey
    assert [q.id for q in picked.asked] == ["gender", "purpose"]
    own = check_config_success(MINIMAL + OWN_QUESTION).portal.survey
    heard = own.questions[1]
    assert [q.id for q in own.questions] == ["purpose", "heard"] and not heard.builtin
    assert heard.text["en"] == "How did you hear of this service?" and heard.answers == ("friend", "poster")
    assert heard.options[1].text == {"id": "Poster", "en": "Poster"}
    off = check_config_success(MINIMAL + "[portal.survey]\nenabled = false\n").portal.survey
    assert off.asked == ()


TOO_MANY_OPTIONS = ", ".join(f'{{ id = "a{i}", text = "A{i}" }}' for i in range(9))
HEARD = '[[portal.survey.questions]]\nid = "heard"\n'


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ('[portal]\nsurvey = "yes"\n', "portal.survey: expected true/false or a table"),
        ("[portal.survey]\nenabled = 1\n", "portal.survey.enabled: expected true or false"),
        (
            "[portal.survey]\nquestion = []\n",
            'portal.survey.question: unknown key; did you mean "questions"?',
        ),
        ("[portal.survey]\nquestions = []\n", "portal.survey.questions: needs at least one question"),
        (
            '[portal.survey]\nquestions = ["purpose", "age", "purpose"]\n',
            'portal.survey.questions[3].id: "purpose" is asked twice',
        ),
        ('[portal.survey]\nquestions = ["Umur"]\n', 'portal.survey.questions[1].id: "Umur" is not an id'),
        ('[portal.survey]\nquestions = ["age:x"]\n', 'portal.survey.questions[1].id: "age:x" is not an id'),
        (
            '[portal.survey]\nquestions = ["hobby"]\n',
            'portal.survey.questions[1].id: "hobby" is not one of the program\'s questions',
        ),
        (
            "[portal.survey]\nquestions = " + str([f"q{i}" for i in range(7)]).replace("'", '"') + "\n",
            "portal.survey.questions: has 7 questions; at most 6",
        ),
        (
            '[[portal.survey.questions]]\nid = "age"\noptions = [{ id = "young", text = "Young" }]\n',
            'portal.survey.questions[1]: "age" is one of the program\'s questions',
        ),
        (
            '[[portal.survey.questions]]\nid = "heard"\ntext = "Dari mana?"\noptions = []\n',
            "portal.survey.questions[1].options: needs answers to choose from",
        ),
        (
            HEARD + 'text = "Dari mana?"\noptions = [{ id = "a", text = "A" }]\n',
            "portal.survey.questions[1].options: needs at least 2 answers",
        ),
        (
            HEARD + f'text = "Dari mana?"\noptions = [{TOO_MANY_OPTIONS}]\n',
            "portal.survey.questions[1].options: has 9 answers; at most 8",
        ),
        (
            HEARD + 'options = [{ id = "a", text = "A" }, { id = "b", text = "B" }]\n',
            "portal.survey.questions[1].text: is required",
        ),
        (
            '[[portal.survey.questions]]\nid = "heard"\ntext = { id = "", en = " " }\n'
            'options = [{ id = "a", text = "A" }, { id = "b", text = "B" }]\n',
            "portal.survey.questions[1].text: must not be empty",
        ),
        (
            '[[portal.survey.questions]]\nid = "heard"\ntext = { fr = "D\'où?" }\n'
            'options = [{ id = "a", text = "A" }, { id = "b", text = "B" }]\n',
            'portal.survey.questions[1].text: unknown language "fr"',
        ),
        (
            '[[portal.survey.questions]]\nid = "heard"\ntext = "Dari mana?"\n'
            'options = [{ id = "a", text = "A" }, { id = "a", text = "B" }]\n',
            'portal.survey.questions[1].options[2].id: "a" is already an answer of this question',
        ),
        (
            '[[portal.survey.questions]]\nid = "heard"\ntext = "Dari mana?"\n'
            'options = [{ id = "A B", text = "A" }, { id = "b" }, "c"]\n',
            'portal.survey.questions[1].options[1].id: "A B" is not an id',
        ),
        (
            '[[portal.survey.questions]]\nid = "heard"\ntext = "Dari mana?"\n'
            'options = [{ id = "a", text = "A" }, { id = "b" }]\n',
            "portal.survey.questions[1].options[2].text: is required",
        ),
        (
            '[[portal.survey.questions]]\nid = "heard"\ntext = "' + "x" * 201 + '"\n'
            'options = [{ id = "a", text = "A" }, { id = "b", text = "B" }]\n',
            "portal.survey.questions[1].text: is longer than 200 characters",
        ),
        (
            '[[portal.survey.questions]]\nid = "heard"\ncolour = "red"\ntext = "Dari mana?"\n'
            'options = [{ id = "a", text = "A" }, { id = "b", text = "B" }]\n',
            "portal.survey.questions[1].colour: unknown key",
        ),
    ],
)
def test_bad_survey_questions_name_the_key(extra, expected):
    check_config_failure(MINIMAL + extra, expected)


def test_config_check_names_a_bad_survey_question(tmp_path):
    from click.testing import CliRunner

    from gateway.cli import cli

    bad = tmp_path / "hotspot.toml"
    bad.write_text(MINIMAL + '[portal.survey]\nquestions = ["purpose", "gender", "purpose"]\n')
    result = CliRunner().invoke(cli, ["config", "check", str(bad)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f'{bad}: portal.survey.questions[3].id: "purpose" is asked twice' in result.output


def test_portal_workers():
    assert check_config_success(MINIMAL).portal.workers == 1  # the memory target (docs/benchmarks.md)
    assert check_config_success(MINIMAL + "[portal]\nworkers = 2\n").portal.workers == 2
    for bad in ("0", "17", '"two"'):
        check_config_failure(MINIMAL + f"[portal]\nworkers = {bad}\n", "portal.workers")
