"""The one rule for text that leaves TenantPilot: one function per medium (terminal, chat, mail header,
mail body, webhook JSON), each making text from tenants and files inert there.

Names, descriptions and values come from other admins and from export files other people wrote. Where
they leave (an alert, the CLI's screen) control characters (C0/C1, ESC sequences), CR/LF where a line
break would forge a header or a line, U+2028/U+2029, bidi controls (U+202E makes "exe.tnemyap" read
"payment.exe"), zero-width and tag characters are shown as ``[U+XXXX]``: visible, never acting.
Lone surrogates (which no encoder can write) are shown the same way. Files and CSV keep text as it is
(they are data, not a screen); the app's pages (tenantpilot/app/escaping.py) and the customer report
(tenantpilot/report/) show text through `block` and `invisibles`, this module's table.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Any

_FILLERS = (0x034F, 0x115F, 0x1160, 0x3164, 0xFFA0)  # invisible letters and the grapheme joiner


@lru_cache(maxsize=2)
def _table(keep: str) -> dict[int, str]:
    """code point -> "[U+XXXX]" for every control, format (bidi, zero-width, tags), line/paragraph
    separator and invisible filler character, except the characters in `keep`."""
    found = {}
    # planes 0-1 and the tag block of plane 14 hold every such character (planes 2-13: none)
    for code in (*range(0x20000), *range(0xE0000, 0xE1000)):
        if unicodedata.category(chr(code)) in ("Cc", "Cf", "Zl", "Zp", "Cs") and chr(code) not in keep:
            found[code] = f"[U+{code:04X}]"
    found.update({code: f"[U+{code:04X}]" for code in _FILLERS})
    return found


def invisibles() -> dict[int, str]:
    """The translation table of `block`: code point -> "[U+XXXX]" (LF and TAB kept)."""
    return _table("\n\t")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def line(value: Any) -> str:
    """One line of text: every control (CR, LF and TAB included), separator, bidi and invisible character
    shown as [U+XXXX]. For a name inside a line: a terminal cell, a chat line, a mail header."""
    return _text(value).translate(_table(""))


def block(value: Any) -> str:
    """Text of several lines (LF and TAB kept; CR, ESC, U+2028/2029, bidi controls shown as [U+XXXX])."""
    return _text(value).translate(_table("\n\t"))


def terminal(value: Any) -> str:
    """What the CLI prints to a screen: no escape sequence (ESC, CSI, OSC), no CR overwriting a line,
    no bidi reordering. Multi-line output (a table, a report) keeps its LF and TAB."""
    return block(value)


class Screen:
    """A text stream (sys.stdout, sys.stderr) whose text passes `terminal`; bytes written to its
    `.buffer` (CSV on standard output) pass as they are. The CLI writes through it."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    def write(self, text: str) -> int:
        return int(self._raw.write(terminal(text)))

    def flush(self) -> None:
        self._raw.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def chat(value: Any) -> str:
    """A value inside a Teams or Slack message line (before the channel's own Markdown escaping)."""
    return line(value)


def mail_header(value: Any) -> str:
    """A mail header value: one line, no CR/LF (no forged `Bcc:`), no invisible character. Use it with
    email.message.EmailMessage(policy=email.policy.SMTP), which refuses a header that still holds a
    line break."""
    return line(value)


def mail_body(value: Any) -> str:
    """A plain-text mail body: lines kept, every other control shown."""
    return block(value)


def webhook(value: Any) -> Any:
    """A value of the generic webhook's JSON: every string one inert line, lists and dicts walked;
    numbers, booleans and None as they are (a multi-line text field is built from `line`d parts)."""
    if isinstance(value, str):
        return line(value)
    if isinstance(value, dict):
        return {k: webhook(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [webhook(v) for v in value]
    return value
