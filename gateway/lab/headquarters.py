"""The program's headquarters in the lab: PostgreSQL 15 and FreeRADIUS 3.2 in ``<prefix>hq``.

:class:`Headquarters` writes a self-contained FreeRADIUS config from
``gateway/lab/hq/radiusd.conf.in`` (listening on the HQ address only, the lab's router
as its one client), creates a PostgreSQL cluster under the lab dir (listening on a unix
socket only, no TCP at all, run as the ``postgres`` user), loads Debian's standard
``radcheck``/``radreply``/``radacct`` schema once, and hands :class:`gateway.lab.lab.Lab`
the two processes to run. Both are stopped by PID like every lab process.
"""

from __future__ import annotations

import secrets
import shutil
import string
from importlib import resources
from pathlib import Path

from gateway.lab.netns import LabError, run
from gateway.lab.topology import HQ_IP, WAN_ROUTER, LabSpec

__all__ = ["PG_BIN", "QUERIES", "SCHEMA", "Headquarters", "HqTemplate", "queries_with_class"]

PG_BIN = Path("/usr/lib/postgresql/15/bin")
SCHEMA = Path("/etc/freeradius/3.0/mods-config/sql/main/postgresql/schema.sql")
QUERIES = SCHEMA.with_name("queries.conf")
HQ_TOOLS = ("freeradius", "radclient", str(PG_BIN / "postgres"), str(PG_BIN / "initdb"), str(PG_BIN / "psql"))
RADIUS_USER = "freerad"
PG_USER = "postgres"


class HqTemplate(string.Template):
    """``@name`` placeholders: FreeRADIUS's own config syntax uses ``${...}`` everywhere."""

    delimiter = "@"


class Headquarters:
    """The HQ host of the lab with ``spec`` under ``lab_dir``: paths, config, processes, SQL."""

    def __init__(self, spec: LabSpec, lab_dir: Path):
        self.spec = spec
        self.ns = spec.hq_ns
        self.dir = lab_dir / "hq"
        self.raddb = self.dir / "raddb"
        self.pgdata = self.dir / "pgdata"
        self.pg_socket_dir = self.dir / "pgsock"
        # the router's copy of its shared secret (the router reads [radius].secret_file)
        self.secret_file = lab_dir / "radius.secret"

    # -- files ------------------------------------------------------------------------

    def check_tools(self) -> None:
        """Raise :class:`LabError` naming the first HQ program that is not installed."""
        for tool in HQ_TOOLS:
            if shutil.which(tool) is None:
                raise LabError(f"{tool} is not installed; run `make deps` (freeradius, postgresql-15)")

    def secret(self) -> str:
        """Return the shared secret of the lab's router and HQ, creating it on first use."""
        if not self.secret_file.exists():
            self.secret_file.write_text(
                secrets.token_hex(20) + "\n"
            )  # hex: a leading "-" reads as a radclient option
        self.secret_file.chmod(0o644)  # lab only: the portal runs as nobody; a router has 0640 root:hotspot
        return self.secret_file.read_text().strip()

    def router_config_section(self) -> str:
        """Return the ``[radius]`` section the lab's router config gets when HQ runs."""
        return "\n".join(
            [
                "",
                "# the lab's headquarters (hotspotctl lab up --hq): see docs/fleet.md",
                "[radius]",
                f'servers = ["{HQ_IP}"]',
                f'secret_file = "{self.secret_file}"',
                "timeout = 0.5",
                "retries = 2",
                'interim_interval = "10s"',
                'device_id = "hash"',
                f'dynauth_listen = "{WAN_ROUTER}:3799"',
                "",
            ]
        )

    def register_site(self, site: int, library_id: str, address: str, secret: str) -> None:
        """Record another lab's library (its link ``site``) as a client of this HQ."""
        folder = self.dir / "sites"
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
        (folder / f"{site}.client").write_text(f"{library_id} {address} {secret}\n")

    def joined_sites(self) -> list[tuple[str, str, str]]:
        """Return (library id, address as HQ sees it, secret) of the libraries that joined this HQ."""
        folder = self.dir / "sites"
        found = []
        for path in sorted(folder.glob("*.client")) if folder.is_dir() else []:
            parts = path.read_text().split()
            if len(parts) == 3:
                found.append((parts[0], parts[1], parts[2]))
        return found

    def write_config(self, library_id: str) -> None:
        """Write the FreeRADIUS config dir and prepare the PostgreSQL cluster (idempotent)."""
        for sub in (self.dir, self.raddb, self.dir / "run", self.dir / "log", self.pg_socket_dir):
            sub.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o755)
        entries = [(library_id, WAN_ROUTER, self.secret()), *self.joined_sites()]
        clients = "\n".join(
            "\n".join(
                [
                    f"client {name} {{",
                    f"\tipaddr = {address}",
                    f'\tsecret = "{secret}"',
                    "\trequire_message_authenticator = no",
                    f"\tshortname = {name}",
                    "\tnas_type = other",
                    "}",
                ]
            )
            for name, address, secret in entries
        )
        template = resources.files("gateway.lab").joinpath("hq/radiusd.conf.in").read_text()
        text = HqTemplate(template).substitute(
            hq_dir=self.dir, hq_ip=HQ_IP, pg_socket_dir=self.pg_socket_dir, clients=clients
        )
        conf = self.raddb / "radiusd.conf"
        conf.write_text(text)
        queries = self.raddb / "queries.conf"
        queries.write_text(queries_with_class(QUERIES.read_text()))
        dictionary = self.raddb / "dictionary"
        dictionary.write_text(
            HqTemplate(resources.files("gateway.lab").joinpath("hq/dictionary.in").read_text()).substitute(
                hq_dir=self.dir
            )
        )
        # FreeRADIUS drops to freerad: it reads its config (with the secret) and writes its pid
        for path in (self.raddb, conf, queries, dictionary, self.dir / "run", self.dir / "log"):
            shutil.chown(path, "root", RADIUS_USER)
        self.raddb.chmod(0o750)
        conf.chmod(0o640)
        (self.dir / "run").chmod(0o770)
        (self.dir / "log").chmod(0o770)
        shutil.chown(self.pg_socket_dir, PG_USER, PG_USER)
        self.pg_socket_dir.chmod(0o755)
        if not (self.pgdata / "PG_VERSION").exists():
            self.pgdata.mkdir(exist_ok=True)
            shutil.chown(self.pgdata, PG_USER, PG_USER)
            self.pgdata.chmod(0o700)
            # trust on the unix socket only (lab): PostgreSQL listens on no TCP address
            self._as_postgres(
                str(PG_BIN / "initdb"), "-D", str(self.pgdata), "--auth=trust", "--username=postgres",
                "--encoding=UTF8", "--locale=C.UTF-8", timeout=120,
            )  # fmt: skip

    # -- processes --------------------------------------------------------------------

    def postgres_argv(self) -> list[str]:
        """Return the command line of the PostgreSQL server (as postgres, unix socket only)."""
        return [
            "setpriv", f"--reuid={PG_USER}", f"--regid={PG_USER}", "--init-groups", "--",
            str(PG_BIN / "postgres"), "-D", str(self.pgdata),
            "-c", "listen_addresses=",
            "-c", f"unix_socket_directories={self.pg_socket_dir}",
            "-c", "max_connections=40",
            "-c", "shared_buffers=16MB",
            "-c", "logging_collector=off",
        ]  # fmt: skip

    def freeradius_argv(self) -> list[str]:
        """Return the command line of FreeRADIUS in the foreground with the lab's config dir."""
        return ["freeradius", "-f", "-l", "stdout", "-d", str(self.raddb)]

    def postgres_ready(self) -> bool:
        """Return whether PostgreSQL accepts connections on its socket."""
        result = run(
            "ip", "netns", "exec", self.ns, str(PG_BIN / "pg_isready"), "-q", "-h", str(self.pg_socket_dir),
            check=False, timeout=10,
        )  # fmt: skip
        return result.returncode == 0

    def freeradius_ready(self) -> bool:
        """Return whether FreeRADIUS listens on the HQ address (auth and accounting)."""
        out = run("ip", "netns", "exec", self.ns, "ss", "-Hlun", check=False).stdout
        return f"{HQ_IP}:1812" in out and f"{HQ_IP}:1813" in out

    def bootstrap_database(self) -> None:
        """Create the ``radius`` role, database and standard schema (once), then the program's tables."""
        exists = self.sql(
            "SELECT 1 FROM pg_database WHERE datname = 'radius'", db="postgres", user="postgres"
        )
        if exists.strip() != "1":
            self.sql("CREATE ROLE radius LOGIN", db="postgres", user="postgres")
            self.sql("CREATE DATABASE radius OWNER radius", db="postgres", user="postgres")
            self._psql("-v", "ON_ERROR_STOP=1", "-f", str(SCHEMA), db="radius", user="radius")
        # what the program adds (idempotent): library metadata for the reach reports
        program = resources.files("gateway.hq").joinpath("program.sql").read_text()
        self._psql("-v", "ON_ERROR_STOP=1", "-c", program, db="radius", user="radius")

    # -- SQL --------------------------------------------------------------------------

    def sql(self, query: str, *, db: str = "radius", user: str = "radius") -> str:
        """Run one SQL statement at HQ and return its rows as ``|``-separated lines."""
        return self._psql("-v", "ON_ERROR_STOP=1", "-c", query, db=db, user=user)

    @property
    def conninfo(self) -> str:
        """Return the libpq connection string of HQ's database (for ``hotspotctl hq report --db``)."""
        return f"host={self.pg_socket_dir} dbname=radius user=radius"

    def add_library(self, library_id: str, name: str = "", district: str = "", province: str = "") -> None:
        """Add (or update) a library's metadata at HQ."""
        q = _sql_literal
        self.sql(
            "INSERT INTO library (id, name, district, province) "
            f"VALUES ({q(library_id)}, {q(name)}, {q(district)}, {q(province)}) "
            "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, district = EXCLUDED.district, "
            "province = EXCLUDED.province"
        )

    def add_user(
        self,
        name: str,
        password: str,
        reply: dict[str, str] | None = None,
        check: dict[str, str] | None = None,
    ) -> None:
        """Add (or replace) a central account: a ``radcheck`` password and ``radreply`` attributes."""
        quote = _sql_literal
        statements = [
            f"DELETE FROM radcheck WHERE username = {quote(name)}",
            f"DELETE FROM radreply WHERE username = {quote(name)}",
            "INSERT INTO radcheck (username, attribute, op, value) "
            f"VALUES ({quote(name)}, 'Cleartext-Password', ':=', {quote(password)})",
        ]
        for attribute, value in (check or {}).items():
            statements.append(
                "INSERT INTO radcheck (username, attribute, op, value) "
                f"VALUES ({quote(name)}, {quote(attribute)}, ':=', {quote(value)})"
            )
        for attribute, value in (reply or {}).items():
            statements.append(
                "INSERT INTO radreply (username, attribute, op, value) "
                f"VALUES ({quote(name)}, {quote(attribute)}, ':=', {quote(value)})"
            )
        self.sql("BEGIN; " + "; ".join(statements) + "; COMMIT")

    def _psql(self, *args: str, db: str, user: str) -> str:
        return run(
            "ip", "netns", "exec", self.ns, str(PG_BIN / "psql"), "-X", "-q", "-At",
            "-h", str(self.pg_socket_dir), "-U", user, "-d", db, *args, timeout=60,
        ).stdout  # fmt: skip

    def _as_postgres(self, *argv: str, timeout: float = 60) -> None:
        run(
            "setpriv",
            f"--reuid={PG_USER}",
            f"--regid={PG_USER}",
            "--init-groups",
            "--",
            *argv,
            timeout=timeout,
        )


def queries_with_class(text: str) -> str:
    """Return Debian's ``queries.conf`` with its ``class`` items switched on (as its comment says).

    The three items are commented out by default (``column_name =\t# ", Class"``); with them
    the accounting queries write the packet's Class into ``radacct.class``.
    """
    lines = []
    switched = 0
    for line in text.splitlines(keepends=True):
        key = line.strip().split("=", 1)[0].strip()
        if key in ("column_name", "packet_xlat", "reply_xlat") and '# ",' in line:
            line = line.replace('# ",', '",', 1)
            switched += 1
        lines.append(line)
    if switched != 3:
        raise LabError(f"{QUERIES}: expected 3 commented class items, found {switched}")
    return "".join(lines)


def _sql_literal(value: str) -> str:
    """Return ``value`` as a SQL string literal (quotes doubled; lab input only)."""
    return "'" + value.replace("'", "''") + "'"
