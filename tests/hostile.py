"""A corpus of hostile strings for every renderer of untrusted text (CLI now, console later).

Each payload is what a service, a runbook or a teammate could put in a probe body, a note, an
actor name or a title. `assert_terminal_safe` is the property every renderer's output must
have: nothing a terminal would act on, and no line breaks in one-line fields.
"""

from __future__ import annotations

import re

ESC = "\x1b"

#: name -> payload (str). Names are stable so failures say which payload got through.
PAYLOADS: dict[str, str] = {
    "csi_clear": f"{ESC}[2J{ESC}[H",
    "csi_colour": f"{ESC}[31mred{ESC}[0m",
    "conceal": f"visible {ESC}[8mhidden rm -rf /{ESC}[28m",
    "osc0_title": f"{ESC}]0;pwned{ESC}\\",
    "osc2_title": f"{ESC}]2;pwned\x07",
    "osc8_link": f"{ESC}]8;;https://evil.example/{ESC}\\click{ESC}]8;;{ESC}\\",
    "osc52_clipboard": f"{ESC}]52;c;UFdORUQ=\x07{ESC}[2J",
    "dcs": f"{ESC}Pq#0;2;0;0;0#1;2;100;100;0{ESC}\\",
    "apc": f"{ESC}_Gf=100;AAAA{ESC}\\",
    "pm": f"{ESC}^private{ESC}\\",
    "sos": f"{ESC}Xstring{ESC}\\",
    "lone_esc": f"a{ESC}b",
    "c1_csi": "\x9b2J\x9d0;title\x9c",
    "c1_nel": "line\x85forged",
    "bidi_override": "user\u202egnp.exe",
    "bidi_isolate": "\u2066admin\u2069\u2067x\u2069",
    "zero_width": "ad\u200bmin\ufeff\u2060",
    "tags": "ok\U000e0049\U000e0047\U000e004e",
    "nul": "before\x00after",
    "backspace_cr": "safe\rrm -rf /\x08\x08",
    "bell_del": "\x07\x7f",
    "newline_forge": "alice\n     9  2025-10-20 07:00:00  root  note: forged",
    "crlf_forge": "x\r\n## Log integrity: ok",
    "line_separator": "a\u2028b\u2029c",
    "lone_surrogate": "bad\ud800surrogate",
    "invalid_utf8_escaped": b"caf\xc3 \xff\xfe".decode("utf-8", "surrogateescape"),
    "rich_markup": "[red]alarm[/red] [link=https://evil.example]x[/link] [bold blink]",
    "emoji_code": ":warning: :rotating_light:",
    "huge_line": f"{ESC}]52;c;" + "A" * (1 << 20) + "\x07",
}

#: Raw bytes that are not UTF-8, as a note file or a probe body could carry them.
INVALID_UTF8: list[bytes] = [b"\xff\xfe", b"caf\xc3", b"\xed\xa0\x80", b"ok\x80\x9b2J"]

#: Benign text that must come through unchanged.
BENIGN: list[str] = [
    "DNS record for dynamodb.us-east-1 is empty",
    "café — naïve façade, 東京, Ελληνικά, עברית, العربية",
    "👩‍💻 family 👨‍👩‍👧 flag 🇺🇸 keycap 1️⃣",
    "path C:\\temp\\x and [brackets] and 100% {braces}",
]

_TERMINAL_ACTIVE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b\u200e\u200f\u2028\u2029\u202a-\u202e"
    "\u2060-\u2064\u2066-\u206f\ufeff\U000e0000-\U000e007f\ud800-\udfff]"
)


def utf8(text: str) -> bool:
    """Whether a payload can be written as UTF-8 at all (lone surrogates cannot)."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def assert_terminal_safe(output: str, *, one_line: bool = False) -> None:
    """Fail unless `output` holds nothing a terminal acts on (and no line break if one-line)."""
    bad = _TERMINAL_ACTIVE.search(output)
    if bad is not None:
        around = output[max(0, bad.start() - 20) :][:60]
        raise AssertionError(f"{bad.group()!r} at {bad.start()} in {around!r}")
    if one_line:
        assert "\n" not in output and "\t" not in output, repr(output[:200])
    output.encode("utf-8")  # no lone surrogates: printable to any UTF-8 terminal
