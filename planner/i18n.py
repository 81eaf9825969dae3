"""User-facing words for people outside the planning office: Bahasa Indonesia by default, English on request.

Every word a driver, boat crew, PPK, PPS or Lanal officer reads comes from one gettext catalog per language
(`planner/locales/<lang>.po`), so a translation is a file, not a code change. Dates, times and numbers are
formatted by Babel in the catalog's locale ("Sabtu, 23 November 2024, 06.00 WITA").

Message ids are stable keys (`surat_jalan.title`); a message may name values in braces (`{count} kotak`), which
`Language.__call__` fills in. Only the catalog text is a format string: values from data are inserted as they
are and never formatted again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_datetime, format_time
from babel.messages.pofile import read_po
from babel.numbers import format_decimal

from planner.errors import InputError

LANGUAGES = ("id", "en")
DEFAULT_LANGUAGE = "id"
LOCALE_DIR = Path(__file__).parent / "locales"
# All of Kalimantan Timur keeps Waktu Indonesia Tengah (UTC+8); "WITA" is how people there write it.
TIMEZONE = ZoneInfo("Asia/Makassar")
ZONE_LABEL = "WITA"


@dataclass(frozen=True)
class Language:
    """A language's messages and formats. `lang("bast.title")` is the text of a message in that language."""

    code: str
    messages: dict[str, str]

    def __call__(self, message_id: str, **values: Any) -> str:
        """The message `message_id` with its `{name}` fields filled from `values` (KeyError: no such message)."""
        text = self.messages[message_id]
        return text.format(**values) if values else text

    def datetime(self, moment: datetime) -> str:
        """Day, date and clock time in WITA, e.g. "Sabtu, 23 November 2024, 06.00 WITA"."""
        local = moment.astimezone(TIMEZONE)
        return f"{format_datetime(local, 'EEEE, d MMMM y', locale=self.code)}, {self.time(local)}"

    def date(self, moment: datetime | date) -> str:
        """Day and date, e.g. "Sabtu, 23 November 2024"."""
        if isinstance(moment, datetime):
            moment = moment.astimezone(TIMEZONE)
        return format_date(moment, "EEEE, d MMMM y", locale=self.code)

    def time(self, moment: datetime) -> str:
        """Clock time in WITA the local way: "06.00 WITA" in Indonesian, "06:00 WITA" in English."""
        pattern = "HH.mm" if self.code == "id" else "HH:mm"
        return f"{format_time(moment.astimezone(TIMEZONE), pattern, locale=self.code)} {ZONE_LABEL}"

    def number(self, value: float, digits: int = 0) -> str:
        """A number with the language's separators: 2.821.202 and 1,5 in Indonesian; 2,821,202 and 1.5 in English."""
        pattern = "#,##0" + ("." + "0" * digits if digits > 0 else "")
        return format_decimal(value, format=pattern, locale=self.code)


def catalog_path(code: str) -> Path:
    """The gettext catalog file of a language."""
    return LOCALE_DIR / f"{code}.po"


@lru_cache(maxsize=len(LANGUAGES))
def language(code: str = DEFAULT_LANGUAGE) -> Language:
    """The messages and formats of language `code` ("id" or "en"); InputError for any other code."""
    if code not in LANGUAGES:
        raise InputError(f"unknown language {code!r}: use one of {', '.join(LANGUAGES)}")
    with catalog_path(code).open("rb") as handle:
        catalog = read_po(handle, locale=code)
    messages = {str(m.id): str(m.string) for m in catalog if m.id and m.string}
    return Language(code, messages)
