"""Message catalogs and Indonesian date formats (planner.i18n)."""

from datetime import UTC, datetime

import pytest
from babel.messages.pofile import read_po

from planner.errors import InputError
from planner.i18n import LANGUAGES, catalog_path, language


def _ids(code: str) -> set[str]:
    with catalog_path(code).open("rb") as handle:
        return {m.id for m in read_po(handle) if m.id}


def test_every_language_has_every_message():
    ids = {code: _ids(code) for code in LANGUAGES}
    for code in LANGUAGES:
        assert ids[code] == ids["id"], f"{code}.po differs from id.po: {ids[code] ^ ids['id']}"
        assert all(language(code).messages.get(i) for i in ids[code]), f"{code}.po has an empty message"


def test_dates_the_indonesian_way():
    moment = datetime(2024, 11, 22, 22, 0, tzinfo=UTC)  # 06.00 WITA on Saturday 23 November
    assert language("id").datetime(moment) == "Sabtu, 23 November 2024, 06.00 WITA"
    assert language("en").datetime(moment) == "Saturday, 23 November 2024, 06:00 WITA"
    assert language("id").number(2821202) == "2.821.202"
    assert language("id").number(1.5, 1) == "1,5"


def test_values_are_inserted_not_formatted_again():
    page = language("id")("common.page", page="{7*7}", pages=2)
    assert page == "Halaman {7*7} dari 2"


def test_unknown_language_is_a_user_error():
    with pytest.raises(InputError, match="unknown language 'fr'"):
        language("fr")
