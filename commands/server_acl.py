"""The server ACL every room of every class carries (``m.room.server_acl``): allow everyone, deny the
servers an operator blocked (`!school block`, commands/blocking.py).

Matrix matches ACL entries against the host name *without the port*, so a blocked server that
shares its host name with the bot's server, a registered school or an operator's server cannot be
denied by ACL without denying them too: it is then blocked by Ako alone. The allow list is always
``["*"]``: an empty one would shut every server out, the bot's included.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from storage.models import server_of

from .context import Context

ACL = "m.room.server_acl"


def host_of(server: str) -> str:
    """The host name of a server name, as server ACLs compare it: the port removed."""
    if server.startswith("["):  # IPv6 literal: [::1]:8448
        return server[: server.index("]") + 1] if "]" in server else server
    return re.sub(r":\d+$", "", server).lower()


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
        return True
    except ValueError:
        return False


def _glob(entry: str, host: str) -> bool:
    """An ACL entry matches a host: ``*`` any characters, ``?`` one, everything else literally."""
    pattern = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in entry)
    return re.fullmatch(pattern, host, re.S | re.I) is not None


def acl_allows(content: dict, server: str) -> bool:
    """Whether a server may take part in a room with this ACL (the spec's matching rules)."""
    host = host_of(server)
    if not content.get("allow_ip_literals", True) and _is_ip_literal(host):
        return False
    if any(_glob(entry, host) for entry in content.get("deny", []) if isinstance(entry, str)):
        return False
    return any(_glob(entry, host) for entry in content.get("allow", []) if isinstance(entry, str))


@dataclass(frozen=True)
class ServerAcl:
    content: dict
    not_denied: dict[str, str]  # blocked server → why the ACL cannot deny it (shared host name)


async def protected_servers(ctx: Context) -> dict[str, str]:
    """Servers an ACL must never deny, each with what it is."""
    found = {server_of(ctx.settings.bot_user_id): "my own server"}
    for school in await ctx.repos.schools.all():
        found.setdefault(school.server, f"the server of {school.name}")
    for operator in ctx.settings.operators:
        found.setdefault(server_of(operator), f"the server of operator {operator}")
    return found


async def server_acl(ctx: Context) -> ServerAcl:
    """The ACL every class room carries: allow everyone, deny the blocked servers' hosts, except a
    host shared with a server that must stay (the ACL then cannot deny it; Ako still blocks it)."""
    protected = await protected_servers(ctx)
    by_host = {host_of(s): what for s, what in protected.items()}
    deny, not_denied = set(), {}
    for server in await ctx.repos.blocked.all():
        host = host_of(server)
        if host in by_host:
            not_denied[server] = f"its host name {host} is also that of {by_host[host]}"
        else:
            deny.add(host)
    content = {"allow": ["*"], "deny": sorted(deny), "allow_ip_literals": True}
    for server, what in protected.items():  # the rules above make this impossible; never write it if not
        if not acl_allows(content, server):
            raise RuntimeError(f"The server ACL {content} would deny {what} ({server})")
    return ServerAcl(content, not_denied)
