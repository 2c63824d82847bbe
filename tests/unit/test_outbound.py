"""The one rule for outbound text (tenantpilot/outbound.py), medium by medium, on hostile inputs."""

from __future__ import annotations

import io

import pytest

from tenantpilot import outbound

HOSTILE = [
    ("\x1b]0;title\x07", "[U+001B]]0;title[U+0007]"),  # OSC: sets the window title
    ("\x1b[2J\x1b[31mred", "[U+001B][2J[U+001B][31mred"),  # CSI: clears the screen, colours
    ("a\rb", "a[U+000D]b"),  # CR: overwrites the line
    ("pay\u202egpj.exe", "pay[U+202E]gpj.exe"),  # bidi override
    ("x\u2028y\u2029z", "x[U+2028]y[U+2029]z"),  # line / paragraph separators
    ("zero\u200bwidth\ufeff", "zero[U+200B]width[U+FEFF]"),
    ("\x9b31m", "[U+009B]31m"),  # C1 CSI
    ("Ünïcödé 中文 ✓", "Ünïcödé 中文 ✓"),  # visible text stays as it is
]


@pytest.mark.parametrize("raw, shown", HOSTILE)
@pytest.mark.parametrize("medium", [outbound.line, outbound.chat, outbound.mail_header, outbound.terminal,
                                    outbound.mail_body, outbound.webhook])
def test_every_medium_shows_controls(medium, raw: str, shown: str) -> None:
    assert medium(raw) == shown


@pytest.mark.parametrize("medium, kept", [(outbound.line, False), (outbound.mail_header, False),
                                          (outbound.chat, False), (outbound.webhook, False),
                                          (outbound.terminal, True), (outbound.mail_body, True)])
def test_line_breaks_only_where_lines_are_the_medium(medium, kept: bool) -> None:
    assert medium("a\nb\tc") == ("a\nb\tc" if kept else "a[U+000A]b[U+0009]c")


def test_webhook_walks_json_and_keeps_other_values() -> None:
    assert outbound.webhook({"n": 1, "b": True, "x": None, "l": ["\x1b", {"k": "\r"}]}) == \
        {"n": 1, "b": True, "x": None, "l": ["[U+001B]", {"k": "[U+000D]"}]}


def test_the_screen_stream_passes_text_through_the_rule_and_bytes_as_they_are() -> None:
    raw = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    screen = outbound.Screen(raw)
    print("a\x1b[2Jb", file=screen)  # type: ignore[arg-type]
    screen.flush()
    screen.buffer.write("c\x1bd\n".encode())
    screen.flush()
    raw.buffer.seek(0)
    assert raw.buffer.read() == "a[U+001B][2Jb\nc\x1bd\n".encode()
