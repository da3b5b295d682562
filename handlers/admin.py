"""/admin: units, members, invitations and access requests, from an administrator's private
chat, with buttons wherever a choice is made. Every action is re-authorised by the service."""

from __future__ import annotations

from telegram import InlineKeyboardButton, Update
from telegram.ext import BaseHandler, CallbackQueryHandler, CommandHandler

from bot.app import set_menu_for
from bot.context import BotContext
from bot.keyboards import BadCallback, Callback, button, decode, markup, pager, rows, scope_pattern
from bot.services.directory import Role, UnitView, Viewer
from bot.services.errors import N_, NotAllowed
from bot.services.flows import Flow
from bot.texts import HTML, bold, code, escape, link
from handlers.common import is_private, reply, toast
from handlers.flows import route

S = "adm"
ROLE_CODES = {"s": Role.STAFF, "o": Role.UNIT_OFFICER, "c": Role.COUNCIL, "a": Role.ADMIN}
ROLE_NAMES = {
    Role.STAFF: N_("staff"),
    Role.UNIT_OFFICER: N_("unit officer"),
    Role.COUNCIL: N_("council member"),
    Role.ADMIN: N_("administrator"),
}
PER_PAGE = 8


def _code_of(role: Role) -> str:
    return next(k for k, v in ROLE_CODES.items() if v is role)


def _admin(context: BotContext) -> Viewer:
    viewer = context.require_viewer()
    if not viewer.is_admin:
        raise NotAllowed(N_("Only administrators can do that."))
    return viewer


def role_name(context: BotContext, role: Role) -> str:
    return context.t.raw(ROLE_NAMES[role])


async def admin_command(update: Update, context: BotContext) -> None:
    _admin(context)
    if not is_private(update):
        await reply(update, context, context.t("Please use /admin in a private chat with me."))
        return
    await _menu(update, context)


async def _menu(update: Update, context: BotContext) -> None:
    requests = await context.services.directory.count_access_requests(_admin(context))
    t = context.t
    await reply(
        update,
        context,
        bold(t("Administration")),
        markup(
            [button(t("Units"), S, "units", 0), button(t("Members"), S, "mlist", 0, 0)],
            [button(t("Add a member"), S, "madd"), button(t("Find a member"), S, "mfind")],
            [button(t("Access requests ({count})", count=requests), S, "reqs")],
            [button(t("Emulation catalogue"), "cat", "menu")],
        ),
    )


async def on_admin(update: Update, context: BotContext) -> None:
    viewer = _admin(context)
    if not is_private(update):  # administration shows people's data: private chats only
        await toast(update, context.t("Please use /admin in a private chat with me."), alert=True)
        return
    data = decode(update.callback_query.data if update.callback_query else None)
    action = ACTIONS.get(data.action)
    if action is None:
        await reply(
            update, context, context.t("This button is no longer valid. Please start again.")
        )
        return
    await action(update, context, viewer, data)


# --- units -------------------------------------------------------------------------------------


def _unit_label(unit: UnitView) -> str:
    return ("· " * unit.depth + unit.name)[:60]


async def units(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    all_units = await context.services.directory.list_units()
    page, pages = _page(data.num(0), len(all_units))
    shown = all_units[page * PER_PAGE : (page + 1) * PER_PAGE]
    layout = rows(button(_unit_label(u), S, "unit", u.id) for u in shown)
    text = bold(context.t("Units")) if all_units else context.t("There are no units yet.")
    await reply(
        update,
        context,
        text,
        markup(
            *layout,
            pager(S, "units", page, pages),
            [button(context.t("Add a unit"), S, "uadd"), button(context.t("Back"), S, "menu")],
        ),
    )


async def unit_card(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    await _unit_card(update, context, data.num(0))


async def _unit_card(update: Update, context: BotContext, unit_id: int) -> None:
    directory = context.services.directory
    unit = await directory.get_unit(unit_id)
    history = await directory.unit_name_history(unit_id)
    t = context.t
    lines: list[str] = [bold(unit.name)]
    if unit.parent_id:
        parent = await directory.get_unit(unit.parent_id)
        lines.append(t("Part of: {name}", name=parent.name))
    page = await directory.list_members(context.require_viewer(), unit_id=unit_id, page=0)
    lines.append(t("Members: {count}", count=page.total))
    if not unit.active:
        lines.append(t("No longer active."))
    if len(history) > 1:
        lines.append(t("Former names:"))
        for name, start, end in history[:-1]:
            lines.append(
                f"• {escape(name)} ({t.date(start.astimezone(t.tz).date())}–"
                f"{t.date(end.astimezone(t.tz).date()) if end else ''})"
            )
    layout: list[list[InlineKeyboardButton]] = [
        [button(t("Members"), S, "mlist", unit_id, 0)],
    ]
    if unit.active:
        layout += [
            [button(t("Rename"), S, "uren", unit_id), button(t("Move"), S, "umv", unit_id, 0)],
            [
                button(t("Merge into…"), S, "umg", unit_id, 0),
                button(t("Deactivate"), S, "udel", unit_id),
            ],
        ]
    layout.append([button(t("Back"), S, "units", 0)])
    await reply(update, context, "\n".join(lines), markup(*layout))


async def unit_add(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    await _ask_text(
        update,
        context,
        Flow("admin", "unit_name"),
        context.t("Type the name of the new unit (e.g. Phòng Thống kê Kinh tế)."),
    )


async def unit_rename(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    unit = await context.services.directory.get_unit(data.num(0))
    await _ask_text(
        update,
        context,
        Flow("admin", "unit_rename", {"unit": unit.id}),
        context.t(
            "Type the new name of {name}. The old name stays in the history.", name=unit.name
        ),
    )


async def unit_parent(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    """After a new unit's name: choose where it belongs (0 = top level)."""
    user_id = viewer.telegram_user_id
    flow = await context.services.flows.get(user_id)
    if flow is None or flow.name != "admin" or flow.step != "unit_parent":
        await reply(
            update, context, context.t("This button is no longer valid. Please start again.")
        )
        return
    parent = data.num(0) or None
    unit = await context.services.directory.add_unit(viewer, flow.data["name"], parent_id=parent)
    await context.services.flows.clear(user_id, "admin")
    await context.bot.send_message(user_id, context.t("The unit {name} was added.", name=unit.name))
    await _unit_card(update, context, unit.id)


async def unit_move(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    unit = await context.services.directory.get_unit(data.num(0))
    candidates = [u for u in await context.services.directory.list_units() if u.id != unit.id]
    page, pages = _page(data.num(1), len(candidates))
    shown = candidates[page * PER_PAGE : (page + 1) * PER_PAGE]
    layout = rows(button(_unit_label(u), S, "umvto", unit.id, u.id) for u in shown)
    await reply(
        update,
        context,
        context.t("Where does {name} belong now?", name=unit.name),
        markup(
            [button(context.t("Top level"), S, "umvto", unit.id, 0)],
            *layout,
            pager(S, "umv", page, pages, unit.id),
            [button(context.t("Back"), S, "unit", unit.id)],
        ),
    )


async def unit_move_to(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    await context.services.directory.move_unit(viewer, data.num(0), data.num(1) or None)
    await _unit_card(update, context, data.num(0))


async def unit_merge(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    unit = await context.services.directory.get_unit(data.num(0))
    candidates = [u for u in await context.services.directory.list_units() if u.id != unit.id]
    page, pages = _page(data.num(1), len(candidates))
    shown = candidates[page * PER_PAGE : (page + 1) * PER_PAGE]
    await reply(
        update,
        context,
        context.t(
            "Merge {name} into which unit? Its members and sub-units move there; its "
            "past items keep its name.",
            name=unit.name,
        ),
        markup(
            *rows(button(_unit_label(u), S, "umgask", unit.id, u.id) for u in shown),
            pager(S, "umg", page, pages, unit.id),
            [button(context.t("Back"), S, "unit", unit.id)],
        ),
    )


async def unit_merge_ask(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    source = await context.services.directory.get_unit(data.num(0))
    target = await context.services.directory.get_unit(data.num(1))
    await reply(
        update,
        context,
        context.t(
            "Merge {source} into {target}? This cannot be undone.",
            source=source.name,
            target=target.name,
        ),
        markup(
            [
                button(context.t("Yes, merge"), S, "umgok", source.id, target.id),
                button(context.t("Cancel"), S, "unit", source.id),
            ]
        ),
    )


async def unit_merge_ok(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    target = await context.services.directory.merge_units(viewer, data.num(0), data.num(1))
    await _unit_card(update, context, target.id)


async def unit_deactivate(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    unit = await context.services.directory.deactivate_unit(viewer, data.num(0))
    await reply(
        update,
        context,
        context.t("The unit {name} is no longer active.", name=unit.name),
        markup([button(context.t("Back"), S, "units", 0)]),
    )


# --- members -----------------------------------------------------------------------------------


async def member_list(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    unit_id = data.num(0) or None
    page = await context.services.directory.list_members(viewer, unit_id=unit_id, page=data.num(1))
    await _show_members(
        update,
        context,
        page,
        ("mlist", unit_id or 0),
        back=("unit", unit_id) if unit_id else ("menu",),
    )


async def _show_members(
    update: Update,
    context: BotContext,
    page: object,
    pager_args: tuple[object, ...],
    back: tuple[object, ...],
) -> None:
    from bot.services.directory import MemberView, Page

    assert isinstance(page, Page)
    t = context.t
    layout = []
    for m in page.items:
        assert isinstance(m, MemberView)
        mark = "" if m.active else " ✖"
        layout.append([button(f"{m.full_name}{mark}"[:60], S, "mem", m.id)])
    text = t("{count} people", count=page.total) if page.total else t("Nobody found.")
    action, *args = pager_args
    await reply(
        update,
        context,
        text,
        markup(
            *layout,
            pager(S, str(action), page.page, page.pages, *args),
            [button(t("Back"), S, str(back[0]), *back[1:])],
        ),
    )


async def member_card(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    await _member_card(update, context, data.num(0))


async def _member_card(update: Update, context: BotContext, member_id: int) -> None:
    member = await context.services.directory.get_member(member_id)
    t = context.t
    lines = [
        bold(member.full_name),
        t("Unit: {unit}", unit=member.unit_name or "—"),
        t("Role: {role}", role=role_name(context, member.role)),
        t("Joined Telegram: {state}", state=t("yes") if member.linked else t("not yet")),
    ]
    if not member.active:
        lines.append(t("Deactivated."))
    roles = [
        button(
            ("• " if r is member.role else "") + role_name(context, r),
            S,
            "mrole",
            member.id,
            _code_of(r),
        )
        for r in ROLE_CODES.values()
    ]
    layout: list[list[InlineKeyboardButton]] = [roles[:2], roles[2:]]
    layout.append([button(t("Change unit"), S, "munit", member.id, 0)])
    if member.active and not member.linked:
        layout.append([button(t("Invitation link"), S, "minv", member.id)])
    layout.append(
        [
            button(
                t("Deactivate") if member.active else t("Reactivate"),
                S,
                "mact",
                member.id,
                0 if member.active else 1,
            )
        ]
    )
    layout.append([button(t("Back"), S, "mlist", member.unit_id or 0, 0)])
    await reply(update, context, "\n".join(lines), markup(*layout))


async def member_role(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    role = ROLE_CODES.get(data.word(1))
    if role is None:
        raise BadCallback("unknown role")
    member = await context.services.directory.change_member(viewer, data.num(0), role=role)
    if member.telegram_user_id:
        await set_menu_for(
            context.application, member.telegram_user_id, member.role, member.language
        )
    await _member_card(update, context, member.id)


async def member_active(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    member = await context.services.directory.change_member(
        viewer, data.num(0), active=data.num(1) == 1
    )
    if member.telegram_user_id:
        await set_menu_for(
            context.application,
            member.telegram_user_id,
            member.role if member.active else None,
            member.language,
        )
    await _member_card(update, context, member.id)


async def member_unit(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    member = await context.services.directory.get_member(data.num(0))
    all_units = await context.services.directory.list_units()
    page, pages = _page(data.num(1), len(all_units))
    shown = all_units[page * PER_PAGE : (page + 1) * PER_PAGE]
    await reply(
        update,
        context,
        context.t("Move {name} to which unit?", name=member.full_name),
        markup(
            *rows(button(_unit_label(u), S, "mset", member.id, u.id) for u in shown),
            pager(S, "munit", page, pages, member.id),
            [button(context.t("Back"), S, "mem", member.id)],
        ),
    )


async def member_set_unit(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    await context.services.directory.change_member(viewer, data.num(0), unit_id=data.num(1))
    await _member_card(update, context, data.num(0))


async def member_invite(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    invite = await context.services.directory.create_invite(viewer, data.num(0))
    url = f"https://t.me/{context.bot.username}?start={invite.token}"
    await reply(
        update,
        context,
        context.t(
            "Invitation for {name}, valid until {until}. Send this link to them only; it works "
            "once:\n{link}",
            name=invite.member_name,
            until=invite.expires_at,
            link=HTML(f"{link(url, url)}\n{code(url)}"),
        ),
        markup([button(context.t("Back"), S, "mem", invite.member_id)]),
        edit=False,
    )


async def member_add(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    await _ask_text(
        update,
        context,
        Flow("admin", "member_name"),
        context.t("Type the full name of the new member."),
    )


async def member_add_unit(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    flow = await context.services.flows.get(viewer.telegram_user_id)
    if flow is None or flow.name != "admin" or flow.step != "member_unit":
        await reply(
            update, context, context.t("This button is no longer valid. Please start again.")
        )
        return
    if data.word(0) == "p":  # page through the units
        await _pick_unit_for_new_member(update, context, flow.data["name"], data.num(1))
        return
    unit = await context.services.directory.get_unit(data.num(1))
    flow.step, flow.data["unit"] = "member_role", unit.id
    await context.services.flows.set(viewer.telegram_user_id, flow)
    await reply(
        update,
        context,
        context.t("Role of {name}:", name=flow.data["name"]),
        markup(
            *rows(
                (
                    button(role_name(context, r), S, "maddr", _code_of(r))
                    for r in ROLE_CODES.values()
                ),
                per_row=2,
            )
        ),
    )


async def member_add_role(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    flow = await context.services.flows.get(viewer.telegram_user_id)
    role = ROLE_CODES.get(data.word(0))
    if flow is None or flow.name != "admin" or flow.step != "member_role" or role is None:
        await reply(
            update, context, context.t("This button is no longer valid. Please start again.")
        )
        return
    member = await context.services.directory.add_member(
        viewer, flow.data["name"], flow.data["unit"], role
    )
    await context.services.flows.clear(viewer.telegram_user_id, "admin")
    await context.bot.send_message(
        viewer.telegram_user_id,
        context.t(
            "{name} was added to {unit} as {role}.",
            name=member.full_name,
            unit=member.unit_name or "—",
            role=role_name(context, member.role),
        ),
    )
    await _member_card(update, context, member.id)


async def member_find(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    await _ask_text(
        update,
        context,
        Flow("admin", "member_search"),
        context.t("Type part of the name (accents are optional: “nguyen van a”)."),
    )


async def member_search_page(
    update: Update, context: BotContext, viewer: Viewer, data: Callback
) -> None:
    flow = await context.services.flows.get(viewer.telegram_user_id)
    query = (flow.data.get("query") if flow and flow.name == "admin" else None) or ""
    page = await context.services.directory.list_members(
        viewer, query=query, page=data.num(0), include_inactive=True
    )
    await _show_members(update, context, page, ("msp",), back=("menu",))


async def _pick_unit_for_new_member(
    update: Update, context: BotContext, name: str, page_no: int
) -> None:
    all_units = await context.services.directory.list_units()
    page, pages = _page(page_no, len(all_units))
    shown = all_units[page * PER_PAGE : (page + 1) * PER_PAGE]
    await reply(
        update,
        context,
        context.t("Which unit does {name} work in?", name=name),
        markup(
            *rows(button(_unit_label(u), S, "maddu", "u", u.id) for u in shown),
            pager(S, "maddu", page, pages, "p"),
        ),
    )


# --- access requests ---------------------------------------------------------------------------


async def requests(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    pending = await context.services.directory.list_access_requests(viewer)
    t = context.t
    if not pending:
        await reply(
            update, context, t("No requests are waiting."), markup([button(t("Back"), S, "menu")])
        )
        return
    lines = [bold(t("Access requests"))]
    layout = []
    for r in pending[:PER_PAGE]:
        lines.append(
            t("• {name} ({unit}), {at}", name=r.full_name, unit=r.unit_name or "—", at=r.created_at)
        )
        layout.append(
            [
                button(t("Approve {name}", name=r.full_name)[:60], "acc", "ok", r.id),
                button(t("Reject"), "acc", "no", r.id),
            ]
        )
    layout.append([button(t("Back"), S, "menu")])
    await reply(update, context, "\n".join(lines), markup(*layout))


async def menu(update: Update, context: BotContext, viewer: Viewer, data: Callback) -> None:
    await context.services.flows.clear(viewer.telegram_user_id, "admin")
    await _menu(update, context)


# --- typed input -------------------------------------------------------------------------------


async def _ask_text(update: Update, context: BotContext, flow: Flow, prompt: str) -> None:
    user_id = context.require_viewer().telegram_user_id
    await context.services.flows.set(user_id, flow)
    await reply(update, context, prompt + "\n" + context.t("Send /cancel to stop."))


@route("admin")
async def admin_text(update: Update, context: BotContext, flow: Flow) -> None:
    viewer = _admin(context)
    message = update.effective_message
    if message is None or not message.text:
        if message is not None:
            await message.reply_text(context.t("Please type the text, or send /cancel."))
        return
    directory = context.services.directory
    text = message.text
    if flow.step == "unit_name":
        from bot.services.text import clean_name

        flow.step, flow.data["name"] = "unit_parent", clean_name(text, limit=200)
        await context.services.flows.set(viewer.telegram_user_id, flow)
        top = await directory.list_units()
        layout = rows(button(_unit_label(u), S, "upar", u.id) for u in top[:20])
        await reply(
            update,
            context,
            context.t("Where does {name} belong?", name=flow.data["name"]),
            markup([button(context.t("Top level"), S, "upar", 0)], *layout),
        )
    elif flow.step == "unit_rename":
        unit = await directory.rename_unit(viewer, int(flow.data["unit"]), text)
        await context.services.flows.clear(viewer.telegram_user_id, "admin")
        await reply(update, context, context.t("Renamed to {name}.", name=unit.name))
        await _unit_card(update, context, unit.id)
    elif flow.step == "member_name":
        from bot.services.text import clean_name

        flow.step, flow.data["name"] = "member_unit", clean_name(text)
        await context.services.flows.set(viewer.telegram_user_id, flow)
        await _pick_unit_for_new_member(update, context, flow.data["name"], 0)
    elif flow.step == "member_search":
        page = await directory.list_members(viewer, query=text, include_inactive=True)
        flow.data["query"] = text
        await context.services.flows.set(viewer.telegram_user_id, flow)
        await _show_members(update, context, page, ("msp",), back=("menu",))
    else:
        await message.reply_text(context.t("Please use the buttons above, or send /cancel."))


def _page(page: int, total: int) -> tuple[int, int]:
    pages = max(1, -(-total // PER_PAGE))
    return min(max(page, 0), pages - 1), pages


ACTIONS = {
    "menu": menu,
    "units": units,
    "unit": unit_card,
    "uadd": unit_add,
    "upar": unit_parent,
    "uren": unit_rename,
    "umv": unit_move,
    "umvto": unit_move_to,
    "umg": unit_merge,
    "umgask": unit_merge_ask,
    "umgok": unit_merge_ok,
    "udel": unit_deactivate,
    "mlist": member_list,
    "mem": member_card,
    "mrole": member_role,
    "mact": member_active,
    "munit": member_unit,
    "mset": member_set_unit,
    "minv": member_invite,
    "madd": member_add,
    "maddu": member_add_unit,
    "maddr": member_add_role,
    "mfind": member_find,
    "msp": member_search_page,
    "reqs": requests,
}


def handlers() -> list[BaseHandler]:  # type: ignore[type-arg]
    return [
        CommandHandler("admin", admin_command),
        CallbackQueryHandler(on_admin, pattern=scope_pattern(S)),
    ]
