"""The commands the bot knows, who may use them and where: one list that drives /help and the
per-role command menus."""

from __future__ import annotations

from dataclasses import dataclass

from bot.services.directory import Viewer
from bot.texts import N_
from storage.models import Role


@dataclass(frozen=True, slots=True)
class Command:
    name: str
    description: str  # message id, translated where shown
    role: Role | None  # None: anyone, strangers included
    private: bool = True
    group: bool = False
    # a unit officer may use it too, though the rank is higher (e.g. /report for one's own unit)
    also_unit_officer: bool = False

    def allowed(self, viewer: Viewer) -> bool:
        if self.role is None:
            return True
        if self.also_unit_officer and viewer.is_unit_officer:
            return True
        return viewer.at_least(self.role)


COMMANDS: list[Command] = [
    Command("start", N_("Start, or join with an invitation"), None),
    Command("help", N_("What I can do for you"), None, group=True),
    Command("language", N_("Tiếng Việt / English"), None),
    Command("cancel", N_("Stop what you are doing"), Role.STAFF),
    Command("settings", N_("Your notification settings"), Role.STAFF),
    Command("admin", N_("Manage units, members and invitations"), Role.ADMIN),
]


def register(command: Command) -> None:
    """Features add their commands at import; order of registration is the menu order."""
    if any(c.name == command.name for c in COMMANDS):
        return
    COMMANDS.append(command)


# what people use most comes first in /help and the menus; the rest keeps registration order
PRIORITY = (
    "nominate",
    "gooddeed",
    "exemplars",
    "gooddeeds",
    "my",
    "review",
    "ballots",
    "report",
    "admin",
    "announce",
    "groups",
    "audit",
)


def _rank(command: Command) -> int:
    return PRIORITY.index(command.name) if command.name in PRIORITY else len(PRIORITY)


def for_viewer(viewer: Viewer, *, group: bool = False) -> list[Command]:
    allowed = [c for c in COMMANDS if (c.group if group else c.private) and c.allowed(viewer)]
    return sorted(allowed, key=_rank)


def for_role(role: Role | None, *, group: bool = False) -> list[Command]:
    probe = Viewer(0, 1 if role else None, None, role, None, None)
    return for_viewer(probe, group=group)
