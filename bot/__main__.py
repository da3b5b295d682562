"""The `hoadep` command (also `python -m bot`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from bot.config import ConfigError, Settings, load_settings
from bot.services.errors import N_

if TYPE_CHECKING:
    from bot.services.reports import ReportPeriod
    from bot.texts import Translator

log = logging.getLogger("hoadep")


class RedactSecrets(logging.Filter):
    """Replace secrets in every log record: URLs to the Bot API carry the token."""

    def __init__(self, secrets: Sequence[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = message
        for secret in self.secrets:
            redacted = redacted.replace(secret, "[REDACTED]")
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


def setup_logging(settings: Settings | None, level: str = "INFO") -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    if settings is not None:
        secrets = [settings.telegram.token.get_secret_value()]
        if settings.telegram.webhook_secret is not None:
            secrets.append(settings.telegram.webhook_secret.get_secret_value())
        handler.addFilter(RedactSecrets(secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    from bot.log_caps import cap_third_party_loggers

    cap_third_party_loggers()  # at any level: see bot/log_caps.py


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        raise SystemExit(2) from None


async def _migrate(settings: Settings) -> None:
    from storage import migrate
    from storage.db import Database

    db = Database(settings.database.url)
    try:
        before = await migrate.current_revisions(db)
        await migrate.upgrade(db)
        await db.optimize()
        after = await migrate.current_revisions(db)
        if before != after:
            log.info("database migrated: %s -> %s", sorted(before) or "empty", sorted(after))
    finally:
        await db.dispose()


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings()
    setup_logging(settings, args.log_level)
    try:
        asyncio.run(_migrate(settings))
    except Exception as exc:
        log.error("cannot open the database %s: %s", _safe_url(settings.database.url), exc)
        return 3
    from telegram import Update

    from bot.app import build_application

    application = build_application(settings)
    tg = settings.telegram
    if settings.announcements.role == "scheduler":
        # a second instance beside the one that takes the updates (Telegram allows one poller
        # per token): it posts the scheduled announcements and fetches nothing
        from bot.scheduler import run_scheduler_only

        log.info(
            "Hoa Đẹp scheduler-only instance starting (database %s)",
            _safe_url(settings.database.url),
        )
        asyncio.run(run_scheduler_only(application))
        return 0
    log.info("Hoa Đẹp starting (%s mode, database %s)", tg.mode, _safe_url(settings.database.url))
    if tg.mode == "webhook":
        if not tg.webhook_url:
            print(
                "telegram.webhook_url is required in webhook mode "
                "(set it in config.toml or as HOADEP_TELEGRAM__WEBHOOK_URL)",
                file=sys.stderr,
            )
            return 2
        application.run_webhook(
            listen=tg.webhook_listen,
            port=tg.webhook_port,
            url_path="telegram",
            webhook_url=tg.webhook_url,
            secret_token=tg.webhook_secret.get_secret_value() if tg.webhook_secret else None,
            allowed_updates=Update.ALL_TYPES,
        )
    else:
        application.run_polling(allowed_updates=Update.ALL_TYPES, timeout=tg.poll_timeout)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    settings = _settings()
    setup_logging(settings, args.log_level)
    asyncio.run(_migrate(settings))
    print("The database is up to date.")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    settings = _settings()
    setup_logging(settings, args.log_level)
    if args.example:
        if args.what != "catalogue" or args.file is not None:
            print("--example goes with `hoadep import catalogue` and no file.", file=sys.stderr)
            return 2
        from bot.resources import ResourceError, example_catalogue

        try:
            data = example_catalogue()
        except ResourceError as exc:
            print(str(exc), file=sys.stderr)
            return 2
        asyncio.run(_migrate(settings))
        return asyncio.run(_import_catalogue(settings, data))
    kind, path = ("members", args.what) if args.file is None else (args.what, args.file)
    handler = IMPORTERS.get(kind)
    if handler is None:
        print(f"Unknown import kind {kind!r}: use one of {', '.join(IMPORTERS)}.", file=sys.stderr)
        return 2
    file = Path(path)
    if not file.is_file():
        print(f"No such file: {file}", file=sys.stderr)
        return 2
    asyncio.run(_migrate(settings))
    return asyncio.run(handler(settings, file.read_bytes()))


async def _import_members(settings: Settings, data: bytes) -> int:
    from bot.services.directory import ImportError_
    from bot.services.registry import build_services
    from bot.texts import translator
    from storage.db import Database

    db = Database(settings.database.url)
    t = translator(settings.organisation.default_language)
    try:
        services = build_services(settings, db)
        try:
            count = await services.directory.import_members_csv(data)
        except ImportError_ as exc:
            print(t.raw(exc.message), file=sys.stderr)
            for line, message, params in exc.problems:
                where = t.raw("line {line}").format(line=line) if line else ""
                print(
                    f"  {where}: {t.raw(message).format(**params)}".replace("  : ", "  "),
                    file=sys.stderr,
                )
            return 1
        print(t.raw("{count} members imported.").format(count=count))
        return 0
    finally:
        await db.dispose()


async def _import_catalogue(settings: Settings, data: bytes) -> int:
    from bot.services.catalogue import CatalogueImportError
    from bot.services.registry import build_services
    from bot.texts import translator
    from storage.db import Database

    db = Database(settings.database.url)
    t = translator(settings.organisation.default_language)
    try:
        services = build_services(settings, db)
        try:
            summary = await services.catalogue.import_toml(data)
        except CatalogueImportError as exc:
            print(t.raw(exc.message), file=sys.stderr)
            for path, message, params in exc.problems:
                where = f"{path}: " if path else ""
                print(f"  {where}{t.raw(message).format(**params)}", file=sys.stderr)
            return 1
        lines = {
            "units": t.raw("Units: {created} created, {updated} updated, {unchanged} unchanged."),
            "fields": t.raw("Fields: {created} created, {updated} updated, {unchanged} unchanged."),
            "criteria": t.raw(
                "Criteria: {created} created, {updated} updated, {unchanged} unchanged."
            ),
            "titles": t.raw("Titles: {created} created, {updated} updated, {unchanged} unchanged."),
            "movements": t.raw(
                "Movements: {created} created, {updated} updated, {unchanged} unchanged."
            ),
        }
        print(t.raw("The catalogue was imported."))
        for section, count in summary.sections():
            print(
                "  "
                + lines[section].format(
                    created=count.created, updated=count.updated, unchanged=count.unchanged
                )
            )
        if not summary.changed:
            print(t.raw("Nothing changed: the database already matches the file."))
        return 0
    finally:
        await db.dispose()


IMPORTERS = {"members": _import_members, "catalogue": _import_catalogue}


def cmd_example(args: argparse.Namespace) -> int:
    """The packaged example files, to copy and adapt: `hoadep example catalogue > mine.toml`."""
    from bot import resources

    name = resources.CATALOGUE_EXAMPLE if args.which == "catalogue" else resources.CONFIG_EXAMPLE
    try:
        data = resources.read_example(name)
    except resources.ResourceError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    settings = _settings()
    from sqlalchemy.engine import make_url

    url = make_url(settings.database.url)
    if url.get_backend_name() != "sqlite":
        print(
            "`hoadep backup` copies SQLite databases. For PostgreSQL use pg_dump (see the README).",
            file=sys.stderr,
        )
        return 2
    source = url.database or ""
    if not source or not Path(source).is_file():
        print(f"No SQLite database at {source!r}.", file=sys.stderr)
        return 2
    target = Path(args.file)
    if target.exists() and not args.force:
        print(f"{target} exists already (use --force to replace it).", file=sys.stderr)
        return 2
    partial = target.with_name(target.name + ".partial")
    # the online backup API copies a consistent snapshot while the bot keeps writing
    with sqlite3.connect(source) as src, sqlite3.connect(partial) as dst:
        src.backup(dst)
    os.replace(partial, target)
    print(f"Backup written to {target}.")
    return 0


REPORT_LISTS = ("exemplars", "nominations", "good_deeds", "units")
REPORT_CHARTS = ("deeds", "fields")


def cmd_report(args: argparse.Namespace) -> int:
    """`hoadep report`: the files of /report, made as an administrator (any scope)."""
    settings = _settings()
    setup_logging(settings, args.log_level)
    from bot.texts import translator

    lang = args.lang or settings.organisation.default_language
    t = translator(lang, settings.organisation.timezone)

    def fail(message: str, **params: object) -> int:
        print(t.raw(message).format(**params), file=sys.stderr)
        return 2

    if args.format == "csv" and args.list is None:
        return fail(N_("--format csv needs --list: exemplars, nominations, good_deeds or units."))
    if args.format == "png" and args.chart is None:
        return fail(N_("--format png needs --chart: deeds or fields."))
    try:
        period = _report_period(args.period)
    except ValueError:
        return fail(
            N_("“{text}” is not a period: write movement:ID, year:YYYY or dd/mm/yyyy-dd/mm/yyyy."),
            text=args.period,
        )
    unit = args.unit.strip().lower()
    if unit != "all" and not (unit.isdigit() and len(unit) <= 12):
        return fail(N_("“{text}” is not a unit: write a unit id or all."), text=args.unit)
    out = Path(args.out)
    if not out.parent.is_dir():
        return fail(N_("No such folder: {path}"), path=str(out.parent))
    from sqlalchemy.engine import make_url

    url = make_url(settings.database.url)
    if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
        # SQLite would create an empty file: say what is missing instead
        return fail(N_("No SQLite database at {path}."), path=url.database or "")
    return asyncio.run(_report(settings, args, period, None if unit == "all" else int(unit), t))


def _report_period(text: str) -> ReportPeriod:
    from bot.services.catalogue import parse_period
    from bot.services.errors import DomainError
    from bot.services.reports import ReportPeriod

    raw = text.strip()
    kind, _, value = raw.partition(":")
    if kind.lower() == "movement" and value.strip().isdigit():
        return ReportPeriod.for_movement(int(value))
    if kind.lower() == "year" and value.strip().isdigit() and len(value.strip()) == 4:
        return ReportPeriod.for_year(int(value))
    try:
        start, end = parse_period(raw)
    except DomainError:
        raise ValueError(raw) from None
    return ReportPeriod.between(start, end)


async def _report(
    settings: Settings,
    args: argparse.Namespace,
    period: ReportPeriod,
    unit_id: int | None,
    t: Translator,
) -> int:
    from sqlalchemy import select

    from bot.services import report_files
    from bot.services.errors import DomainError
    from bot.services.reports import ReportScope, build_report
    from storage import migrate
    from storage.db import Database
    from storage.models import Member, Role

    def fail(message: str, **params: object) -> int:
        print(t.raw(message).format(**params), file=sys.stderr)
        return 2

    db = Database(settings.database.url)
    try:
        try:
            if not await migrate.is_up_to_date(db):
                return fail(N_("The database schema is out of date: run `hoadep migrate` first."))
            async with db.read() as session:
                admin = await session.scalar(
                    select(Member.id)
                    .where(Member.role == Role.ADMIN.value, Member.active.is_(True))
                    .order_by(Member.id)
                    .limit(1)
                )
        except Exception as exc:
            log.debug("database error", exc_info=exc)
            return fail(
                N_("Cannot read the database {url}: {error}"),
                url=_safe_url(settings.database.url),
                error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
            )
        if admin is None:
            return fail(
                N_(
                    "There is no active administrator in the database yet, and reports from the "
                    "command line are made as an administrator. Send /start to the bot from an "
                    "administrator's account first."
                )
            )
        scope = ReportScope.office() if unit_id is None else ReportScope.unit(unit_id)
        lang = t.language
        try:
            data = await build_report(
                db,
                admin,
                period,
                scope,
                settings.organisation.tz,
                include_lists=args.format != "png",
            )
        except DomainError as exc:
            return fail(exc.message, **exc.params)
        if args.format == "xlsx":
            content = await report_files.to_xlsx_async(data, lang)
        elif args.format == "csv":
            content = await report_files.to_csv_async(data, args.list, lang)
        elif args.chart == "deeds":
            content = await report_files.chart_deeds_per_unit_month_async(data, lang)
        else:
            content = await report_files.chart_exemplars_per_field_async(data, lang)
    finally:
        await db.dispose()
    out = Path(args.out)
    partial = out.with_name(out.name + ".partial")
    try:
        partial.write_bytes(content)
        os.replace(partial, out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        return fail(N_("Cannot write {path}: {error}"), path=str(out), error=exc.strerror or exc)
    print(t.raw("Report written to {path} ({size} bytes).").format(path=out, size=len(content)))
    return 0


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hoadep", description="Hoa Đẹp — emulation movement bot")
    p.add_argument("--log-level", default=os.environ.get("HOADEP_LOG_LEVEL", "INFO"))
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "run",
        help='migrate the database and run the bot (with [announcements] role = "scheduler": '
        "only post the scheduled announcements, fetch no updates)",
    ).set_defaults(func=cmd_run)
    sub.add_parser("migrate", help="upgrade the database schema").set_defaults(func=cmd_migrate)
    imp = sub.add_parser("import", help="import members (CSV) or other data")
    imp.add_argument("what", help="members.csv, or a kind (members, catalogue) followed by a file")
    imp.add_argument("file", nargs="?")
    imp.add_argument(
        "--example",
        action="store_true",
        help="with catalogue: load the example catalogue shipped with the bot",
    )
    imp.set_defaults(func=cmd_import)
    example = sub.add_parser(
        "example", help="print a shipped example: the catalogue (TOML) or the configuration"
    )
    example.add_argument("which", choices=("catalogue", "config"))
    example.set_defaults(func=cmd_example)
    backup = sub.add_parser("backup", help="write a consistent copy of the SQLite database")
    backup.add_argument("file")
    backup.add_argument("--force", action="store_true")
    backup.set_defaults(func=cmd_backup)
    rep = sub.add_parser(
        "report",
        help="write a sơ kết / tổng kết report file (as an administrator: any unit, or all)",
        description="The files of /report, made as an administrator (the whole office or any "
        "unit, with its sub-units and the units merged into it).",
    )
    rep.add_argument(
        "--period",
        required=True,
        help="movement:ID, year:YYYY, or dd/mm/yyyy-dd/mm/yyyy (both days included)",
    )
    rep.add_argument("--unit", default="all", help="a unit id, or all (default: all)")
    rep.add_argument("--format", required=True, choices=("xlsx", "csv", "png"))
    rep.add_argument("--list", choices=REPORT_LISTS, help="with --format csv: which list")
    rep.add_argument("--chart", choices=REPORT_CHARTS, help="with --format png: which chart")
    rep.add_argument("--lang", choices=("vi", "en"), help="default: organisation.default_language")
    rep.add_argument("--out", required=True, help="the file to write (replaced if it exists)")
    rep.set_defaults(func=cmd_report)
    return p


def _require_catalogs() -> None:
    """An installation without its translations would answer a Vietnamese office in English."""
    from bot.resources import ResourceError, check_catalogs

    try:
        check_catalogs()
    except ResourceError as exc:
        print(f"Hoa Đẹp cannot start: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    _require_catalogs()
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
