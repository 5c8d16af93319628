"""The one validator of item fields, for item files and suites alike.

A field that does not fit raises `FieldError(field, message)`: the file parser turns it
into an error item naming file, line and field; a suite's `items_from_rows` into an error
item naming the row and field (`suites.base.RowError` is this class). One function per
field shape; each takes the raw mapping (a file's item, a dataset's row) and the field name.

- `string`: a required string, empty allowed or not;
- `strings`: a required list of non-empty strings, optionally exactly `count` of them;
- `prompt`: an item file's prompt, a string or chat messages `{role, content}`, a user message's
  content a string or a list of parts (text and, for kinds that take images, image parts:
  `content_parts`); `prompt_value`,
  `chat_messages`, `chat_prompt`: a dataset's prompt, whose messages may be spelled as
  ShareGPT spells them (`from` / `value`, `human` / `gpt`);
- `name`, `item_id`, `check_name`: a name that appears in a pytest node id (an id, a subset),
  under THE one rule `name_error`: non-empty, no '::', no newline, no carriage return;
- `flag`, `tags`: an item's `strict` and `tags`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from .base import Prompt, freeze_prompt
from .images import PLACEHOLDER, ImageError, parse_ref

ROLES = ("system", "user", "assistant")
# a dataset's role names -> ours
ROLE_NAMES = {"user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant", "bot": "assistant",
              "model": "assistant", "system": "system"}
NAME_RULE = "must be non-empty, without '::' and without a newline"
PART_TYPES = ("text", "image")  # a content part's `type`
PROMPT_FIELDS = ("prompt", "question")  # the field holding a kind's prompt (judged calls it question)


class FieldError(Exception):
    """A field that does not fit its shape; becomes an error item naming the field."""

    def __init__(self, field: str, message: str):
        super().__init__(f"field {field!r}: {message}")
        self.field, self.message = field, message


# -- strings ----------------------------------------------------------------------------------
def string(raw: Mapping, name: str, empty: bool = False) -> str:
    """A required string, non-empty (not blank) unless `empty`: a suite's answers may be empty,
    as the official scripts score them too (an empty string is a valid, if bad, response)."""
    value = raw.get(name)
    if value is None:
        raise FieldError(name, "missing")
    if not isinstance(value, str):
        raise FieldError(name, f"must be a string, got {type(value).__name__}")
    if not empty and not value.strip():
        raise FieldError(name, "is empty")
    return value


def strings(raw: Mapping, name: str, count: int | None = None) -> tuple:
    """A required non-empty list of non-empty strings (answers, steps), exactly `count` of them when given."""
    value = raw.get(name)
    if value is None:
        raise FieldError(name, "missing")
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list) or not value:
        raise FieldError(name, f"must be a non-empty list of answers, got {type(value).__name__}")
    for i, answer in enumerate(value):
        if not isinstance(answer, str) or not answer.strip():
            raise FieldError(name, f"answer {i} must be a non-empty string")
    if count is not None and len(value) != count:
        raise FieldError(name, f"must hold exactly {count} answers, got {len(value)}")
    return tuple(value)


def steps(raw: Mapping, name: str) -> tuple:
    """A required non-empty list of solution steps. Empty steps are kept: dropping one would
    shift every later step's index (ProcessBench labels the earliest wrong step by index)."""
    value = raw.get(name)
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list) or not value:
        raise FieldError(name, f"must be a non-empty list of steps, got {type(value).__name__}")
    for i, step in enumerate(value):
        if not isinstance(step, str):
            raise FieldError(name, f"step {i} must be a string, got {type(step).__name__}")
    return tuple(value)


def grading(raw: Mapping) -> dict:
    """The optional grader fields (base.GRADING_FIELDS) a raw item has: `rubric` and `reference`
    (non-empty strings) and `checklist` (a non-empty list of non-empty strings); {} when none."""
    found = {}
    for name in ("rubric", "reference"):
        if raw.get(name) is not None:
            found[name] = string(raw, name)
    value = raw.get("checklist")
    if value is not None:
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list) or not value or not all(isinstance(q, str) and q.strip() for q in value):
            raise FieldError("checklist", "must be a non-empty list of non-empty strings (the checklist's questions)")
        found["checklist"] = tuple(value)
    return found


def images(raw: Mapping, name: str = "images") -> dict:
    """The optional `images` (items/images.py) and the image parts of the prompt's messages:
    {"images": (ImageRef, ...)}, the field's entries first, then the parts in order of appearance
    (inline refs), or {} when there are none. Checks each entry's shape and that its file exists,
    and hashes its bytes; never decodes."""
    value = raw.get(name)
    found: tuple = ()
    if value is not None:
        if not isinstance(value, (list, tuple)) or not value:
            raise FieldError(name, "must be a non-empty list of images (paths or data:image/...;base64, URIs)")
        try:
            found = tuple(parse_ref(entry, i) for i, entry in enumerate(value))
        except ImageError as exc:
            raise FieldError(name, str(exc)) from None
    found += inline_images(raw, len(found))
    return {"images": found} if found else {}


def inline_images(raw: Mapping, start: int = 0) -> tuple:
    """The image parts of the kind's prompt field (`prompt`, or `question` for judged), as inline
    ImageRefs numbered from `start`; () when its messages hold none."""
    field = _prompt_field(raw)
    messages = raw.get(field) if field else None
    if not isinstance(messages, list):
        return ()
    found = []
    for i, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        for j, part in enumerate(content if isinstance(content, list) else ()):
            if isinstance(part, dict) and part.get("type") == "image":
                entry = {k: v for k, v in part.items() if k != "type"}
                try:
                    ref = parse_ref(entry, start + len(found))
                except ImageError as exc:
                    raise FieldError(field, f"message {i} part {j}: {exc}") from None
                found.append(dataclasses.replace(ref, inline=True))
    return tuple(found)


def _prompt_field(raw: Mapping) -> str | None:
    """The prompt field of the raw item's kind (the first of PROMPT_FIELDS it reads)."""
    return next((f for f in PROMPT_FIELDS if f in _kind_fields(raw)), None)


def _kind_fields(raw: Mapping) -> tuple:
    """The fields the raw item's kind reads (`kind`, pair by default); () for an unknown kind."""
    from . import ITEM_KINDS  # the registry imports the kinds, which import this module

    kind = raw.get("kind", "pair")
    try:
        return ITEM_KINDS.get(kind).FIELDS if isinstance(kind, str) and kind in ITEM_KINDS else ()
    except Exception:  # a plugin's kind that cannot be imported: said by the item's own error
        return ()


# -- names in node ids ------------------------------------------------------------------------
def name_error(value: str) -> str | None:
    """THE rule for a name that appears in a pytest node id (an id, a subset, a node name):
    non-empty, and no '::' (pytest's separator), newline or carriage return. None: it fits."""
    if not value.strip() or "::" in value or "\n" in value or "\r" in value:
        return NAME_RULE
    return None


def check_name(value: str, field: str) -> str:
    error = name_error(value)
    if error:
        raise FieldError(field, error)
    return value


def name(raw: Mapping, field: str) -> str:
    """A required string that fits the node-id rule (a subset)."""
    value = raw.get(field)
    if value is None:
        raise FieldError(field, "missing")
    if not isinstance(value, str):
        raise FieldError(field, f"must be a string, got {type(value).__name__}")
    return check_name(value, field)


def item_id(raw: Mapping, field: str = "id") -> str:
    """A required id, a string or an integer (1 and '1' are the same id), that fits the node-id rule."""
    value = raw.get(field)
    if value is None:
        raise FieldError(field, "missing")
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise FieldError(field, f"must be a string or an integer, got {type(value).__name__}")
    return check_name(str(value), field)


# -- flags and tags ---------------------------------------------------------------------------
def flag(raw: Mapping, field: str, default: bool = False) -> bool:
    value = raw.get(field, default)
    if not isinstance(value, bool):
        raise FieldError(field, "must be true or false")
    return value


def tags(raw: Mapping, field: str = "tags") -> tuple:
    """An optional list of non-empty strings (empty by default)."""
    value = raw.get(field, [])
    if not isinstance(value, list) or not all(isinstance(t, str) and t for t in value):
        raise FieldError(field, "must be a list of non-empty strings")
    return tuple(value)


# -- prompts ----------------------------------------------------------------------------------
def prompt(raw: Mapping, field: str = "prompt") -> Prompt:
    """An item file's prompt: a non-empty string, or a non-empty list of messages, each exactly
    {role, content} with a role of system / user / assistant, ending with the user's turn. A
    user message's content may be a list of parts (`content_parts`), kept as its text with
    PLACEHOLDER where each image sat (the images themselves: `images`)."""
    if field not in raw:
        raise FieldError(field, "missing")
    value = raw[field]
    if isinstance(value, str):
        if not value.strip():
            raise FieldError(field, "is empty")
        return value
    if not isinstance(value, list):
        raise FieldError(field, f"must be a string or a list of chat messages, got {type(value).__name__}")
    if not value:
        raise FieldError(field, "is an empty list of messages")
    messages = []
    for i, message in enumerate(value):
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise FieldError(field, f"message {i} must be a mapping with exactly 'role' and 'content'")
        if message["role"] not in ROLES:
            raise FieldError(field, f"message {i} has role {message['role']!r}; roles are {', '.join(ROLES)}")
        content = message["content"]
        if isinstance(content, list) and message["role"] == "user":
            content = content_parts(content, field, i, images="images" in _kind_fields(raw))
        elif not isinstance(content, str):
            raise FieldError(field, f"message {i} content must be a string" + (
                " or, in a user message, a list of parts" if message["role"] == "user" else ""))
        messages.append({"role": message["role"], "content": content})
    if value[-1]["role"] != "user":
        raise FieldError(field, "the list of messages must end with a user message")
    if any(isinstance(m["content"], list) and any(p.get("type") == "image" for p in m["content"]) for m in value):
        _no_literal_placeholder(messages, value, field)
    return freeze_prompt(messages)


def content_parts(parts: list, field: str, index: int, images: bool) -> str:
    """A user message's content parts -> its text: text parts joined as they are, each image part
    (`{type: image, path: ...}` or `{type: image, data: ...}`, only when the kind takes images)
    as PLACEHOLDER. The images are read by `images`; here only the parts' shape is checked."""
    if not parts:
        raise FieldError(field, f"message {index} content is an empty list of parts")
    text = []
    for j, part in enumerate(parts):
        where = f"message {index} part {j}"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in PART_TYPES:
            raise FieldError(field, f"{where} must be a mapping with type text or image")
        if kind == "text":
            if set(part) != {"type", "text"} or not isinstance(part["text"], str):
                raise FieldError(field, f"{where}: a text part is exactly {{type: text, text: STRING}}")
            text.append(part["text"])
            continue
        if not images:
            raise FieldError(field, f"{where}: an image part needs a kind that takes images (pair, best_of_n, judged)")
        if set(part) not in ({"type", "path"}, {"type", "data"}):
            raise FieldError(field, f"{where}: an image part is {{type: image, path: PATH}} or {{type: image, data: URI}}")
        text.append(PLACEHOLDER)
    return "".join(text)


def _no_literal_placeholder(messages: list[dict], raw_messages: list, field: str) -> None:
    """With image parts, PLACEHOLDER marks them alone: a text that holds it is refused."""
    for i, (message, raw_message) in enumerate(zip(messages, raw_messages)):
        content = raw_message["content"]
        texts = [content] if isinstance(content, str) else [p["text"] for p in content if p["type"] == "text"]
        if any(PLACEHOLDER in t for t in texts):
            raise FieldError(field, f"message {i} holds the text {PLACEHOLDER!r}, which marks where an image part "
                                    "sits; write the image as a part or reword the text")


def chat_messages(value: Any, field: str) -> list[dict]:
    """A dataset's list of chat messages with roles user / assistant / system (ShareGPT's
    from/value and human/gpt are read too; a message may be a (role, content) pair)."""
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list) or not value:
        raise FieldError(field, f"must be a non-empty list of chat messages, got {type(value).__name__}")
    messages = []
    for i, message in enumerate(value):
        if isinstance(message, (list, tuple)) and len(message) == 2:
            role, content = message
        elif isinstance(message, dict):
            role = message.get("role", message.get("from"))
            content = message.get("content", message.get("value"))
        else:
            raise FieldError(field, f"message {i} must be a mapping with 'role' and 'content'")
        role = ROLE_NAMES.get(role.lower()) if isinstance(role, str) else None
        if role is None:
            raise FieldError(field, f"message {i} has no known role (user, assistant or system)")
        if not isinstance(content, str):
            raise FieldError(field, f"message {i} content must be a string")
        messages.append({"role": role, "content": content})
    return messages


def chat_prompt(messages: list[dict], field: str) -> Prompt:
    """A dataset's messages as an item prompt: they must end with the user's turn; one user turn
    is the same prompt as the plain string."""
    if not messages:
        raise FieldError(field, "no messages before the answer")
    if messages[-1]["role"] != "user":
        raise FieldError(field, "the prompt's messages must end with a user message")
    if len(messages) == 1:
        return messages[0]["content"]
    return freeze_prompt(messages)


def prompt_value(value: Any, field: str) -> Prompt:
    """A dataset's prompt: a non-empty string, or chat messages (`chat_messages`)."""
    if value is None:
        raise FieldError(field, "missing")
    if isinstance(value, str):
        if not value.strip():
            raise FieldError(field, "is empty")
        return value
    return chat_prompt(chat_messages(value, field), field)
