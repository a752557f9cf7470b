"""Prompt templates (data, from config) and the chat messages built from them.

A :class:`PromptTemplate` has the structure PROTOCOL.md prescribes: a role line (system message),
an instruction (answer with a JSON object holding one key, English only, non-empty, descriptive and
professional), one example answer in that JSON format, and the key. The wording lives in YAML
(``apps/configs/completion/*.yaml``, and the packaged defaults under ``templates/``), never here.

Messages use the Hugging Face chat format::

    [{"role": "system", "content": [{"type": "text", "text": system}]},
     {"role": "user", "content": [{"type": "image", "image": <PIL>},   # i2t only, BEFORE the text
                                  {"type": "text", "text": <instruction + example [+ title]>}]}]

so that ``processor.apply_chat_template`` of Qwen2.5-VL and Gemma-3 places the image tokens before
the instruction. Text-only chat models (SmolLM2) get the same turns with plain-string content.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mmpc.completion.parsing import parse_answer

__all__ = [
    "PromptTemplate",
    "build_messages",
    "build_text_messages",
    "default_template",
    "user_text",
]

_TEMPLATES = {"i2t": "i2t_title.yaml", "t2i": "t2i_prompt.yaml"}


@dataclass(frozen=True)
class PromptTemplate:
    """One task's prompt, as data.

    Args:
        system: the role line, sent as the system message (e.g. "You are a product title writer").
        instruction: what to do and the answer format. For prompts that read a title (t2i) it
            must contain the placeholder ``{title}``; for i2t it must not.
        example: one example answer, itself a JSON object with ``key`` (checked on construction).
        key: the single JSON key the answer must hold (``"title"`` or ``"prompt"``).
        example_label: the words introducing the example answer in the user text.
    """

    system: str
    instruction: str
    example: str
    key: str
    example_label: str = "Example answer"

    def __post_init__(self) -> None:
        for name in ("system", "instruction", "example", "key"):
            if not str(getattr(self, name)).strip():
                raise ValueError(f"PromptTemplate: field {name!r} is empty")
        check = parse_answer(self.example, self.key)
        if not check.ok or check.stage != "strict":
            raise ValueError(
                f"PromptTemplate: example answer is not a JSON object with key {self.key!r} "
                f"({check.error or 'not strict JSON'})"
            )

    @property
    def needs_title(self) -> bool:
        """Whether the instruction takes the product title (``{title}`` placeholder)."""
        return "{title}" in self.instruction

    @classmethod
    def from_mapping(cls, data: dict[str, Any], source: str = "<mapping>") -> PromptTemplate:
        """Build from a mapping (e.g. a YAML document); unknown keys are an error naming them."""
        allowed = {"system", "instruction", "example", "key", "example_label"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(
                f"{source}: unknown prompt fields {unknown} (allowed: {sorted(allowed)})"
            )
        missing = sorted({"system", "instruction", "example", "key"} - set(data))
        if missing:
            raise ValueError(f"{source}: missing prompt fields {missing}")
        return cls(**{k: str(v) for k, v in data.items()})

    @classmethod
    def from_yaml(cls, path: str | Path) -> PromptTemplate:
        """Read a template from a YAML file with the fields of this class."""
        path = Path(path)
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(
                f"{path}: expected a mapping of prompt fields, got {type(data).__name__}"
            )
        return cls.from_mapping(data, source=str(path))


def default_template(task: str) -> PromptTemplate:
    """The packaged default template for ``task`` (``"i2t"`` or ``"t2i"``), read from YAML data."""
    if task not in _TEMPLATES:
        raise ValueError(f"unknown task {task!r}: expected one of {sorted(_TEMPLATES)}")
    files = importlib.resources.files("mmpc.completion") / "templates" / _TEMPLATES[task]
    with importlib.resources.as_file(files) as path:
        return PromptTemplate.from_yaml(path)


def user_text(template: PromptTemplate, *, title: str | None = None) -> str:
    """The user turn's text: instruction (with ``{title}`` filled in), then the example answer.

    Raises:
        ValueError: a title is required but missing, or given to a template that takes none.
    """
    if template.needs_title:
        if title is None or not title.strip():
            raise ValueError("this prompt template needs a product title ({title} placeholder)")
        instruction = template.instruction.replace("{title}", title.strip())
    else:
        if title is not None:
            raise ValueError("this prompt template takes no title (no {title} placeholder)")
        instruction = template.instruction
    return f"{instruction.strip()}\n\n{template.example_label}:\n{template.example.strip()}"


def build_messages(
    template: PromptTemplate, *, image: Any | None = None, title: str | None = None
) -> list[dict[str, Any]]:
    """Chat messages for a multimodal chat template (content as a list of typed parts).

    Args:
        template: the task's prompt.
        image: the product image (a PIL image) for i2t; it goes BEFORE the text.
        title: the product title for t2i (fills ``{title}``).

    Returns:
        ``[system, user]`` messages in the Hugging Face chat format.
    """
    content: list[dict[str, Any]] = []
    if image is not None:
        content.append({"type": "image", "image": image})
    content.append({"type": "text", "text": user_text(template, title=title)})
    return [
        {"role": "system", "content": [{"type": "text", "text": template.system.strip()}]},
        {"role": "user", "content": content},
    ]


def build_text_messages(
    template: PromptTemplate, *, title: str | None = None
) -> list[dict[str, str]]:
    """Chat messages for a text-only chat template (content as plain strings, no image)."""
    return [
        {"role": "system", "content": template.system.strip()},
        {"role": "user", "content": user_text(template, title=title)},
    ]
