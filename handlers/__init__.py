"""Telegram adapters: parse an update, call one service, render the reply."""

from __future__ import annotations

from typing import Any

from telegram.ext import Application


def install(application: Application[Any, Any, Any, Any, Any, Any]) -> None:
    """Registration order is behaviour: gatekeeping first, then features, then fallbacks."""
    from handlers import (
        admin,
        announce,
        audit,
        catalogue,
        chats,
        errors,
        exemplars,
        flows,
        gate,
        gooddeed,
        groups,
        my,
        nominate,
        report,
        review,
        start,
        vote,
    )

    gate.install(application)
    features = (
        start,
        admin,
        catalogue,
        nominate,
        gooddeed,
        my,
        review,
        vote,
        exemplars,
        audit,
        report,
        groups,
        announce,
    )
    for feature in features:
        for handler in feature.handlers():
            application.add_handler(handler)
    # after the gatekeeper, before the shared handlers: /cancel deletes a submission draft
    for handler in my.early_handlers():
        application.add_handler(handler, group=-1)
    flows.install(application)
    application.add_error_handler(errors.on_error)
    chats.check_declared(application)  # the gatekeeper applies the policies
