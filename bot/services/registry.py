"""All services, built once per application and shared by every update."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from bot.config import Settings
from bot.services.announcements import AnnouncementService
from bot.services.audit_view import AuditViewService
from bot.services.ballot_delivery import BallotDeliveryService
from bot.services.catalogue import CatalogueService
from bot.services.clock import Clock
from bot.services.delivery import DeliveryService
from bot.services.directory import DirectoryService
from bot.services.exemplars import ExemplarService
from bot.services.flows import FlowService
from bot.services.groups import GroupService
from bot.services.moderation import ModerationService
from bot.services.outbox import OutboxService
from bot.services.submissions import SubmissionService
from bot.services.voting import VotingService
from storage.db import Database


@dataclass
class Services:
    settings: Settings
    db: Database
    clock: Clock
    directory: DirectoryService
    flows: FlowService
    groups: GroupService
    outbox: OutboxService
    catalogue: CatalogueService
    moderation: ModerationService
    voting: VotingService
    exemplars: ExemplarService
    audit_view: AuditViewService
    submissions: SubmissionService
    announcements: AnnouncementService
    delivery: DeliveryService
    ballot_delivery: BallotDeliveryService


def build_services(settings: Settings, db: Database, clock: Clock | None = None) -> Services:
    clock = clock or Clock()
    moderation = ModerationService(
        db,
        clock,
        settings.moderation,
        default_language=settings.organisation.default_language,
    )
    return Services(
        settings=settings,
        db=db,
        clock=clock,
        directory=DirectoryService(
            db,
            clock,
            admin_ids=settings.access.admin_ids,
            invite_ttl=timedelta(hours=settings.access.invite_ttl_hours),
            default_language=settings.organisation.default_language,
            viewer_cache_seconds=settings.access.member_cache_seconds,
        ),
        flows=FlowService(db, clock),
        groups=GroupService(db, clock, settings.organisation.default_language),
        outbox=OutboxService(db, clock, settings.delivery),
        catalogue=CatalogueService(db, clock),
        moderation=moderation,
        voting=VotingService(
            db,
            clock,
            settings.moderation,
            moderation,
            default_language=settings.organisation.default_language,
            tz=settings.organisation.tz,
        ),
        exemplars=ExemplarService(db, clock, settings.organisation.tz),
        audit_view=AuditViewService(db, clock),
        submissions=SubmissionService(
            db,
            clock,
            settings.submissions,
            tz=settings.organisation.tz,
            on_submitted=[moderation.announce_new_submission],
        ),
        announcements=AnnouncementService(
            db,
            clock,
            settings.announcements,
            timezone=settings.organisation.timezone,
            default_language=settings.organisation.default_language,
        ),
        delivery=DeliveryService(db, clock, settings.delivery),
        ballot_delivery=BallotDeliveryService(db, clock, settings.delivery),
    )
