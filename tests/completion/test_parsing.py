"""parse_answer on real-looking model answers: each protocol step, and every failure kind."""

from __future__ import annotations

import pytest

from mmpc.completion.parsing import ParseResult, parse_answer


@pytest.mark.parametrize(
    ("raw", "key", "value", "stage"),
    [
        ('{"title": "Red Ceramic Mug, 12 oz"}', "title", "Red Ceramic Mug, 12 oz", "strict"),
        ('  \n{"title": "  Padded Laptop Sleeve  "}\n', "title", "Padded Laptop Sleeve", "strict"),
        (
            '```json\n{"prompt": "a red mug on white, studio light"}\n```',
            "prompt",
            "a red mug on white, studio light",
            "fence",
        ),
        ('```\n{"title": "USB-C Cable 2m"}\n```', "title", "USB-C Cable 2m", "fence"),
        (
            'Sure! Here is the title:\n{"title": "Wooden Chess Set"}\nHope this helps.',
            "title",
            "Wooden Chess Set",
            "braces",
        ),
        (
            'Answer: ```json\n{"title": "Nested {braces} ok"}\n``` done',
            "title",
            "Nested {braces} ok",
            "fence",
        ),
        # a generation cut off before the closing fence
        ('```json\n{"title": "Garden Hose 50ft"}\n', "title", "Garden Hose 50ft", "fence"),
        ('{"title": "Caf\\u00e9 Grinder", "extra": 1}', "title", "Café Grinder", "strict"),
    ],
)
def test_parses_valid_answers(raw: str, key: str, value: str, stage: str) -> None:
    result = parse_answer(raw, key)
    assert result == ParseResult(value, None, stage)
    assert result.ok


@pytest.mark.parametrize(
    ("raw", "key", "error_part"),
    [
        ("", "title", "empty answer"),
        ("   \n ", "title", "empty answer"),
        (None, "title", "empty answer"),
        ("A nice red mug.", "title", "no JSON object"),
        ('{"title": "unterminated', "title", "no JSON object"),
        ('["title", "a list"]', "title", "no JSON object"),
        ('{"prompt": "a red mug"}', "title", "no key 'title'"),
        ('{"title": ""}', "title", "'title' is empty"),
        ('{"title": "   "}', "title", "'title' is empty"),
        ('{"title": null}', "title", "holds NoneType"),
        ('{"title": ["a", "b"]}', "title", "holds list"),
        ('```json\n{"name": "x"}\n```', "title", "no key 'title'"),
    ],
)
def test_failures_are_reported_not_raised(raw: str | None, key: str, error_part: str) -> None:
    result = parse_answer(raw, key)
    assert result.value is None
    assert not result.ok
    assert error_part in result.error
    assert "\n" not in result.error


def test_strict_json_wins_over_inner_objects() -> None:
    # The whole answer is valid JSON: its top-level object is used, not a nested one.
    raw = '{"title": "Outer Title", "meta": {"title": "inner"}}'
    assert parse_answer(raw, "title").value == "Outer Title"
