"""Whom Ako answers at all (SPEC §1, §5): a blocked server's users are refused, and an invite is
accepted only from someone the cluster knows. One rule, read by the dispatcher for commands and by
the bot for invites."""

from __future__ import annotations

from dataclasses import dataclass

from storage.models import server_of
from storage.people import Person
from storage.repositories import Repositories

from .context import Settings


@dataclass(frozen=True)
class Standing:
    """What the records say of a user, as far as admission goes."""

    user_id: str
    operator: bool
    staff: bool
    of_a_school: bool  # their server is a registered school
    blocked: bool  # their server is blocked (`!school block`)


async def standing(repos: Repositories, settings: Settings, user_id: str) -> Standing:
    return of_person(await repos.people.get(user_id), settings)


def of_person(person: Person, settings: Settings) -> Standing:
    """The admission side of what the records say of someone (read once per command)."""
    return Standing(
        user_id=person.user_id,
        operator=person.user_id in settings.operators,
        staff=person.staff,
        of_a_school=person.school is not None,
        blocked=person.blocked,
    )


def refusal(who: Standing) -> str | None:
    """Why Ako takes nothing from this user, or None: an operator is never refused."""
    if who.blocked and not who.operator:
        return f"{server_of(who.user_id)} is blocked in this cluster; I take no commands from its users."
    return None


def accepts_invite(inviter: Standing, direct: bool, allow_guests: bool) -> bool:
    """Operators and staff may bring Ako into any room; a school's user (anyone's, with guests
    allowed) only into a direct message; nobody from a blocked server."""
    if refusal(inviter) is not None:
        return False
    if inviter.operator or inviter.staff:
        return True
    return direct and (allow_guests or inviter.of_a_school)
