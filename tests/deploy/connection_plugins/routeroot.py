"""Ansible connection to a lab router root: commands run as ``ip netns exec NS chroot ROOT``.

For tests only (tests/package/test_upgrade_lab.py): the lab's router root
(gateway/lab/routeroot.py) is a Debian root in a lab router's network namespace, with no
sshd. This is Ansible's ``local`` connection with every command wrapped in that namespace and
root, and every file copied under the root: the role's own tasks (dpkg-query, apt, shell) run
there unchanged. ``$HOTSPOT_ROUTER_ROOT`` and ``$HOTSPOT_ROUTER_NS`` name the root and the
namespace.
"""

from __future__ import annotations

import os
import shlex

from ansible.plugins.connection.local import Connection as LocalConnection

DOCUMENTATION = """
name: routeroot
short_description: run in a lab router root (ip netns exec + chroot), tests only
description: Ansible's local connection, wrapped in a lab namespace and a chroot.
author: PerpuSeru Hotspot team
extends_documentation_fragment: []
"""


class Connection(LocalConnection):
    """The local connection, inside ``$HOTSPOT_ROUTER_NS`` and ``$HOTSPOT_ROUTER_ROOT``."""

    transport = "routeroot"

    def _root(self) -> str:
        return os.environ["HOTSPOT_ROUTER_ROOT"]

    def exec_command(self, cmd, in_data=None, sudoable=True):
        ns, root = shlex.quote(os.environ["HOTSPOT_ROUTER_NS"]), shlex.quote(self._root())
        wrapped = f"ip netns exec {ns} chroot {root} /bin/sh -c {shlex.quote(cmd)}"
        return super().exec_command(wrapped, in_data=in_data, sudoable=sudoable)

    def put_file(self, in_path, out_path):
        return super().put_file(in_path, self._root() + out_path)

    def fetch_file(self, in_path, out_path):
        return super().fetch_file(self._root() + in_path, out_path)
