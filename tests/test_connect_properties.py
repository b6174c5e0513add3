"""Connect's standalone worker reads ``.properties`` files as ``java.util.Properties.load``
(``Utils.loadProps``): separators ``=``, ``:`` or blanks, escapes, continuation lines.

Checked against the examples of ``Properties.load``'s documentation and against an outside
reader of the format, jproperties, on generated files.
"""

from __future__ import annotations

import random

import pytest
from jproperties import Properties

from sim.connect.standalone import parse_properties, read_properties
from sim.errors import ConfigError


def _continues_somewhere(text: str) -> bool:
    """Whether a line of ``text`` ends in an odd number of backslashes."""
    return any((len(line) - len(line.rstrip("\\"))) % 2 for line in text.splitlines())


def _oracle(text: str) -> dict[str, str]:
    properties = Properties()
    properties.load(text.encode("utf-8"), "utf-8")
    return {key: value.data for key, value in properties.items()}


@pytest.mark.parametrize("line", ["Truth = Beauty", "  Truth:Beauty",
                                  "Truth                    :Beauty", "Truth Beauty"])
def test_every_separator_gives_the_same_pair(line):
    """``Properties.load``'s own example: four spellings of key Truth, value Beauty."""
    assert parse_properties(line) == {"Truth": "Beauty"}


def test_continuation_lines_and_a_key_without_value():
    """The documentation's fruits example: a value over three lines, each continuation's
    leading blanks dropped; a key alone has the empty value."""
    text = ("fruits                           apple, banana, pear, \\\n"
            "                                  cantaloupe, watermelon, \\\n"
            "                                  kiwi, mango\n"
            "cheeses\n")
    assert parse_properties(text) == {
        "fruits": "apple, banana, pear, cantaloupe, watermelon, kiwi, mango", "cheeses": ""}


def test_escapes_comments_and_line_ends():
    """Escaped separators and blanks belong to the key; \\t \\n \\uXXXX are characters; an even
    number of trailing backslashes does not continue; trailing blanks stay in the value; a
    comment ends at its line even after a backslash; \\r and \\r\\n end lines too."""
    text = ("# comment \\\n"
            "key\\=with\\:seps\\ and\\ blanks = v\\tw\\u00e9\\n  \r\n"
            "! another\r"
            "path = C:\\\\dir\\\\\n"
            "plain=x\n")
    assert parse_properties(text) == {"key=with:seps and blanks": "v\twé\n  ",
                                      "path": "C:\\dir\\", "plain": "x"}


def test_a_malformed_unicode_escape_is_one_error_line(tmp_path):
    """``Properties.load`` throws "Malformed \\uxxxx encoding."; the worker refuses the file."""
    path = tmp_path / "bad.properties"
    path.write_text("name=x\\u12G4\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"Malformed \\uxxxx encoding") as raised:
        read_properties(path)
    assert "\n" not in str(raised.value)


def test_a_separator_after_a_continuation_still_separates():
    """``Properties.load`` joins a logical line before it looks for the key's end, so a
    separator on the next line separates (jproperties, below, keeps it in the value)."""
    assert parse_properties("a \\\n  = b\nc\\\n\\\n:d") == {"a": "b", "c": "d"}


def test_generated_files_read_as_an_outside_reader_reads_them():
    """Random lines over the format's special characters, read by jproperties and by the
    lab's parser alike (without continuations, which jproperties joins otherwise)."""
    pieces = ["a", "b", "key", " ", "  ", "\t", "=", ":", "\\", "\\\\", "\\=", "\\ ", "#", "!",
              "\\t", "\\u0041", "é", "x.y", "\n", "\r\n"]
    rng = random.Random(2026)
    for _ in range(400):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 30)))
        if "\\u" in text.replace("\\u0041", "") or _continues_somewhere(text):
            continue  # a malformed escape (both refuse it), or a continuation
        assert parse_properties(text) == _oracle(text), repr(text)
