"""PromptTemplate validation and the chat messages built from it."""

from __future__ import annotations

import pytest
from PIL import Image

from mmpc.completion.parsing import parse_answer
from mmpc.completion.prompts import (
    PromptTemplate,
    build_messages,
    build_text_messages,
    default_template,
    user_text,
)


def _t2i() -> PromptTemplate:
    return PromptTemplate(
        system="You are a product photographer.",
        instruction='Write a JSON object with key "prompt".\nTitle: {title}',
        example='{"prompt": "a mug on white"}',
        key="prompt",
    )


def test_i2t_messages_put_the_image_before_the_text() -> None:
    template = default_template("i2t")
    image = Image.new("RGB", (8, 8), "red")
    messages = build_messages(template, image=image)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[0]["content"] == [{"type": "text", "text": template.system}]
    parts = messages[1]["content"]
    assert [p["type"] for p in parts] == ["image", "text"]
    assert parts[0]["image"] is image
    assert parts[1]["text"].startswith(template.instruction.strip())
    assert parts[1]["text"].endswith(template.example)


def test_t2i_messages_fill_the_title_and_carry_no_image() -> None:
    template = _t2i()
    messages = build_messages(template, title="  Red Ceramic Mug ")
    parts = messages[1]["content"]
    assert [p["type"] for p in parts] == ["text"]
    assert "Title: Red Ceramic Mug\n" in parts[0]["text"]
    assert "{title}" not in parts[0]["text"]


def test_text_only_variant_uses_plain_strings() -> None:
    template = _t2i()
    messages = build_text_messages(template, title="Red Mug")
    assert messages == [
        {"role": "system", "content": "You are a product photographer."},
        {"role": "user", "content": user_text(template, title="Red Mug")},
    ]
    assert user_text(template, title="Red Mug") == (
        'Write a JSON object with key "prompt".\nTitle: Red Mug\n\n'
        'Example answer:\n{"prompt": "a mug on white"}'
    )


def test_title_required_exactly_when_the_template_has_a_placeholder() -> None:
    with pytest.raises(ValueError, match="needs a product title"):
        user_text(_t2i())
    with pytest.raises(ValueError, match="takes no title"):
        user_text(default_template("i2t"), title="Red Mug")


@pytest.mark.parametrize("task", ["i2t", "t2i"])
def test_packaged_defaults_follow_the_protocol(task: str) -> None:
    template = default_template(task)
    key = {"i2t": "title", "t2i": "prompt"}[task]
    assert template.key == key
    assert template.needs_title is (task == "t2i")
    assert parse_answer(template.example, key).ok
    assert "JSON" in template.instruction and "English" in template.instruction


def test_bad_templates_are_rejected_in_one_line(tmp_path) -> None:
    with pytest.raises(ValueError, match="example answer is not a JSON object with key 'title'"):
        PromptTemplate(system="s", instruction="i", example='{"prompt": "x"}', key="title")
    with pytest.raises(ValueError, match="field 'system' is empty"):
        PromptTemplate(system=" ", instruction="i", example='{"title": "x"}', key="title")
    path = tmp_path / "p.yaml"
    path.write_text('system: s\ninstruction: i\nexample: \'{"title": "x"}\'\nkey: title\nfoo: 1\n')
    with pytest.raises(ValueError, match=r"p\.yaml: unknown prompt fields \['foo'\]"):
        PromptTemplate.from_yaml(path)
    with pytest.raises(ValueError, match="unknown task"):
        default_template("x2y")
