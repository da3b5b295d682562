"""The result of a council ballot and its minutes (biên bản kiểm phiếu) in the official form:
the whole council, who did not take part and why the threshold is counted without them,
ballots issued, members who voted, the three counts, the ratio and the threshold.

The threshold is counted on the members entitled to vote at opening: the council then, less
those left out of their own item (the nominator, the nominee, a nominated unit's members). A
blank vote or no vote counts against."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.services.errors import N_

EPSILON = 1e-9

MINUTES = {
    True: N_(
        "RECORD OF THE VOTE COUNT\n"
        "Emulation and Commendation Council, secret ballot\n\n"
        "Nomination #{nomination}: {name}\nTitle: {title}\nMovement: {movement}\n"
        "The vote was open from {opened_time} on {opened_date} to {closed_time} on {closed_date}.\n"
        "Council members: {total}\nNot taking part in the vote: {left_out}\n"
        "Ballots issued: {issued}\nMembers who voted: {cast}\n"
        "Agree: {agree}\nDisagree: {disagree}\nBlank votes: {abstain}\n"
        "Approval: {ratio}\n"
        "Required: {threshold} or more (counted on all council members entitled to vote)\n"
        "Result: APPROVED."
    ),
    False: N_(
        "RECORD OF THE VOTE COUNT\n"
        "Emulation and Commendation Council, secret ballot\n\n"
        "Nomination #{nomination}: {name}\nTitle: {title}\nMovement: {movement}\n"
        "The vote was open from {opened_time} on {opened_date} to {closed_time} on {closed_date}.\n"
        "Council members: {total}\nNot taking part in the vote: {left_out}\n"
        "Ballots issued: {issued}\nMembers who voted: {cast}\n"
        "Agree: {agree}\nDisagree: {disagree}\nBlank votes: {abstain}\n"
        "Approval: {ratio}\n"
        "Required: {threshold} or more (counted on all council members entitled to vote)\n"
        "Result: NOT APPROVED."
    ),
}


def percent(value: float, language: str | None = "en") -> str:
    """0.5 -> "50%", 2/3 -> "66.7%" (Vietnamese: "66,7%")."""
    text = f"{value * 100:.1f}".rstrip("0").rstrip(".")
    return (text.replace(".", ",") if (language or "vi").startswith("vi") else text) + "%"


def passes(agree: int, entitled: int, threshold: float) -> bool:
    return entitled > 0 and agree / entitled >= threshold - EPSILON


@dataclass(frozen=True, slots=True)
class BallotResult:
    ballot_id: int
    nomination_id: int
    nominee_name: str
    title_name: str | None
    movement_name: str | None
    opened_at: datetime
    closed_at: datetime
    council_total: int  # the council at opening
    left_out: tuple[str, ...]  # names of the members who could not vote on their own item
    council_size: int  # entitled to vote at opening: ballots issued, the threshold's base
    agree: int
    disagree: int
    abstain: int
    threshold: float
    approved: bool
    minutes: str | None

    @property
    def cast(self) -> int:
        return self.agree + self.disagree + self.abstain

    @property
    def not_voted(self) -> int:
        return max(0, self.council_size - self.cast)

    @property
    def ratio(self) -> float:
        return self.agree / self.council_size if self.council_size else 0.0

    def ratio_text(self, language: str | None) -> str:
        return f"{self.agree}/{self.council_size} ({percent(self.ratio, language)})"

    def params(self, language: str | None, tz: ZoneInfo) -> dict[str, Any]:
        """The minutes' parameters in a language (numbers, times in the office's zone)."""
        opened, closed = self.opened_at.astimezone(tz), self.closed_at.astimezone(tz)
        return {
            "nomination": self.nomination_id,
            "name": self.nominee_name,
            "title": self.title_name or "—",
            "movement": self.movement_name or "—",
            "opened_time": opened.strftime("%H:%M"),
            "opened_date": opened.date(),
            "closed_time": closed.strftime("%H:%M"),
            "closed_date": closed.date(),
            "total": self.council_total,
            "left_out": ", ".join(self.left_out) or "—",
            "issued": self.council_size,
            "cast": self.cast,
            "agree": self.agree,
            "disagree": self.disagree,
            "abstain": self.abstain,
            "ratio": self.ratio_text(language),
            "threshold": percent(self.threshold, language),
        }


__all__ = ("MINUTES", "BallotResult", "passes", "percent")
