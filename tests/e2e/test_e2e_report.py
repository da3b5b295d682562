"""End to end: the real `hoadep run` process over real HTTP against the local Bot API server; an
administrator asks for a report in chat and receives the summary and the workbook."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from storage.db import Database
from tests.e2e.process import BotProcess
from tests.fake_telegram.server import FakeTelegramServer
from tests.test_report_handlers import DEPT_B, seed

pytestmark = pytest.mark.e2e
ADMIN = 1001


def buttons(message: dict[str, Any]) -> list[str]:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return [b["callback_data"] for row in rows for b in row if "callback_data" in b]


async def press(tg: FakeTelegramServer, user: int, data: str, expect: str) -> dict[str, Any]:
    mark = tg.core.mark()
    for message in reversed(tg.core.sent(user)):
        if data in buttons(message):
            tg.core.press_button(user, message, data)
            return await wait_text(tg, user, expect, mark)
    raise AssertionError(f"no button {data}: {[buttons(m) for m in tg.core.sent(user)[-3:]]}")


async def wait_text(tg: FakeTelegramServer, chat: int, expect: str, mark: int) -> dict[str, Any]:
    message: dict[str, Any] = await tg.core.wait_for_message(
        chat, lambda m: expect in (m.get("text") or m.get("caption") or ""), timeout=30, after=mark
    )
    return message


async def test_admin_requests_a_report_and_receives_the_workbook(
    telegram: FakeTelegramServer, e2e_db_url: str, tmp_path: Path
) -> None:
    db = Database(e2e_db_url)
    try:
        world = await seed(db, admin_tg=ADMIN)
    finally:
        await db.dispose()
    tg = telegram
    tg.core.user(ADMIN, "Trần", "Quản Trị")
    bot = BotProcess(tg, e2e_db_url, tmp_path)
    await bot.start()
    try:
        mark = tg.core.mark()
        tg.core.send_text(ADMIN, "/report")
        await wait_text(tg, ADMIN, "Báo cáo sơ kết, tổng kết", mark)
        await press(tg, ADMIN, "rp:ml:0", "Báo cáo phong trào thi đua nào?")
        period = f"m{world.movement}"
        await press(tg, ADMIN, f"rp:p:{period}", "Xin chọn phạm vi báo cáo")
        summary = await press(
            tg, ADMIN, f"rp:go:{period}:o", "Báo cáo phong trào thi đua và điển hình tiên tiến"
        )
        assert "Phong trào «Thi đua chuyển đổi số năm 2025»" in summary["text"]
        # the movement's two exemplars: one person of dept A, the collective of dept B
        assert "Điển hình tiên tiến: 2 (cá nhân 1 · tập thể 1)" in summary["text"]
        assert f"rp:f:{period}:o:x" in buttons(summary)

        mark = tg.core.mark()
        await press(tg, ADMIN, f"rp:f:{period}:o:x", "Đang tạo tệp")
        doc = await tg.core.wait_for_message(
            ADMIN, lambda m: "document" in m, timeout=30, after=mark
        )
        await wait_text(tg, ADMIN, "✅ Đã gửi tệp", mark)
        assert any(r.params.get("action") == "upload_document" for r in tg.core.requests[mark:])
    finally:
        await bot.stop()

    name = doc["document"]["file_name"]
    assert name == "bao-cao-thi-dua-chuyen-doi-so-nam-2025.xlsx"
    assert "Bảng tính Excel" in doc["caption"]
    wb = load_workbook(io.BytesIO(tg.core.files[doc["document"]["file_id"]].data), read_only=True)
    rows = list(wb["Điển hình"].iter_rows(values_only=True))
    assert sorted(r[2] for r in rows[2:]) == sorted(["Nguyễn Văn An", DEPT_B])
    wb.close()
    log = bot.log()
    assert "Traceback" not in log, log
    assert not tg.core.unknown_fields, tg.core.unknown_fields
