"""Load ``shopsync.toml`` and the environment into a validated :class:`Config`.

Why a loader of its own instead of ``Config.model_validate(tomllib.load(f))``:

* an operator who made a mistake needs the *place*: the file, the line, the dotted key,
  what is wrong and what is allowed. pydantic knows the key path; the line comes from
  :func:`locate_keys`, which reads the TOML text the way the parser does;
* secrets may come from the environment instead of the file (``SHOPSYNC_WEBCRM_AUTH_CODE``
  …), which then wins, and an error in such a value names the variable, not a line;
* no error text ever contains a secret's value (pydantic echoes inputs; we do not);
* ``state.url`` defaults to a SQLite file beside the configuration, resolved here so the
  rest of the program never sees ``None``.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, get_args, get_origin

from pydantic import BaseModel, ValidationError

from shopsync.config.model import Config
from shopsync.logs import mask_url

STATE_FILE_NAME = "shopsync-state.sqlite"

ENV_OVERRIDES: dict[str, tuple[str, str]] = {
    "SHOPSYNC_WEBCRM_BASE_URL": ("webcrm", "base_url"),
    "SHOPSYNC_WEBCRM_AUTH_CODE": ("webcrm", "auth_code"),
    "SHOPSYNC_WEBSHOP_BASE_URL": ("webshop", "base_url"),
    "SHOPSYNC_WEBSHOP_TOKEN": ("webshop", "token"),
    "SHOPSYNC_WEBSHOP_WEBHOOK_SECRET": ("webshop", "webhook_secret"),
    "SHOPSYNC_STATE_URL": ("state", "url"),
    "SHOPSYNC_SERVE_ADMIN_TOKEN": ("serve", "admin_token"),
}
"""Environment variable → dotted key it sets; a non-empty variable wins over the file."""

SECRET_KEYS = {
    ("webcrm", "auth_code"),
    ("webshop", "token"),
    ("webshop", "webhook_secret"),
    ("serve", "admin_token"),
}
QUIET_KEYS = SECRET_KEYS | {("state", "url")}
"""Keys whose values never appear in an error (a database URL may carry a password), nor
do the values of the tables that hold them (``webcrm = "…"`` may be the token itself)."""
TABLE_ERRORS = {"dict_type", "model_type", "model_attributes_type"}
"""A value given where a table belongs is never shown: it may be a misplaced secret."""
MAX_NESTING = "arrays or inline tables nested too deeply"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration, and where."""

    source: str
    """The file path, or ``environment variable NAME``."""
    line: int | None
    key: str
    message: str

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}, line {self.line}"
        text = f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"
        return mask_url(text)


class ConfigError(Exception):
    """The configuration cannot be used; ``str()`` names every problem and its place."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


# --------------------------------------------------------------------------- locating keys
_BARE = r"[A-Za-z0-9_-]+"
_BASIC = r'"(?:[^"\\\n]|\\.)*"'
_LITERAL = r"'[^'\n]*'"
_KEY = rf"(?:{_BARE}|{_BASIC}|{_LITERAL})"
_DOTTED = rf"{_KEY}(?:[ \t]*\.[ \t]*{_KEY})*"
_TABLE = re.compile(rf"^[ \t]*\[[ \t]*({_DOTTED})[ \t]*\][ \t]*(?:#.*)?$")
_ARRAY_TABLE = re.compile(rf"^[ \t]*\[\[[ \t]*({_DOTTED})[ \t]*\]\][ \t]*(?:#.*)?$")
_KEY_VALUE = re.compile(rf"^[ \t]*({_DOTTED})[ \t]*=[ \t]*(.*)$")
_INLINE_KEY = re.compile(rf"[{{,][ \t]*({_DOTTED})[ \t]*=")

Loc = tuple[str | int, ...]


def _split_dotted(dotted: str) -> tuple[str, ...]:
    parts: list[str] = []
    for raw in re.findall(_KEY, dotted):
        if raw.startswith(("'", '"')):
            parts.append(str(tomllib.loads(f"k = {raw}")["k"]))
        else:
            parts.append(raw)
    return tuple(parts)


def locate_keys(text: str) -> dict[Loc, int]:
    """Map every key path written in a TOML document to the (1-based) line it is on.

    Handles ``[table]`` and ``[[array.of.tables]]`` headers (the latter adds the element
    index to the path, as pydantic does), dotted and quoted keys, one level of inline
    table, and skips the inside of multi-line strings. A key path the text does not
    spell out is simply absent; callers fall back to its nearest written ancestor.
    """
    lines: dict[Loc, int] = {}
    table: Loc = ()
    array_counts: dict[Loc, int] = {}
    in_string: str | None = None

    def note(path: Loc, lineno: int) -> None:
        for i in range(1, len(path) + 1):
            lines.setdefault(path[:i], lineno)

    for lineno, line in enumerate(text.splitlines(), start=1):
        if in_string is not None:
            if line.count(in_string) % 2 == 1:
                in_string = None
            continue
        if m := _ARRAY_TABLE.match(line):
            path: Loc = _split_dotted(m.group(1))
            index = array_counts.get(path, 0)
            array_counts[path] = index + 1
            table = (*path, index)
            note(table, lineno)
            continue
        if m := _TABLE.match(line):
            table = _split_dotted(m.group(1))
            note(table, lineno)
            continue
        if m := _KEY_VALUE.match(line):
            key_path: Loc = (*table, *_split_dotted(m.group(1)))
            note(key_path, lineno)
            value = m.group(2)
            for delim in ('"""', "'''"):
                if value.count(delim) % 2 == 1:
                    in_string = delim
                    break
            if value.lstrip().startswith("{"):
                for inner in _INLINE_KEY.finditer(value):
                    note((*key_path, *_split_dotted(inner.group(1))), lineno)
    return lines


def dotted(loc: Loc) -> str:
    """``("mapping", "stock_status", "In stock")`` → ``mapping.stock_status."In stock"``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if re.fullmatch(_BARE, part) else json.dumps(part, ensure_ascii=False)
            out += f".{name}" if out else name
    return out


def _line_for(loc: Loc, lines: Mapping[Loc, int]) -> int | None:
    for i in range(len(loc), 0, -1):
        if loc[:i] in lines:
            return lines[loc[:i]]
    return None


# --------------------------------------------------------------------------- messages
def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The pydantic model class that holds the keys at ``loc`` (None for dicts/lists)."""
    model: type[BaseModel] = Config
    parts = list(loc)
    while parts:
        field = model.model_fields.get(str(parts.pop(0)))
        if field is None:
            return None
        annotation: Any = field.annotation
        if get_origin(annotation) is list and parts and isinstance(parts[0], int):
            parts.pop(0)
            annotation = get_args(annotation)[0]
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


_ALLOWED_BY_TYPE = {
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "decimal_type": "a number",
    "decimal_parsing": "a number",
    "string_type": "a quoted string",
    "dict_type": "a table",
    "model_type": "a table",
    "model_attributes_type": "a table",
    "list_type": "an array",
}


def _describe(err: Mapping[str, Any], loc: Loc) -> str:
    kind = err["type"]
    if kind == "extra_forbidden":
        parent = _model_at(loc[:-1])
        allowed = list(parent.model_fields) if parent else []
        msg = f"unknown key {str(loc[-1])!r}"
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        if close:
            msg += f" (did you mean {close[0]!r}?)"
        if allowed:
            where = dotted(loc[:-1])
            msg += f"; allowed keys{' in [' + where + ']' if where else ''}: " + ", ".join(allowed)
        return msg
    msg = str(err["msg"])
    msg = msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    hint = _ALLOWED_BY_TYPE.get(kind)
    if hint and "allowed" not in msg:
        msg += f"; allowed: {hint}"
    # A quiet key, or a table on the way to one (``webcrm = "TOKEN"``), is never echoed.
    secret = any(loc[: len(k)] == k or k[: len(loc)] == loc for k in QUIET_KEYS)
    value = err.get("input")
    if (
        not secret
        and isinstance(value, str | int | float | bool | Decimal)
        and kind != "value_error"
        and kind not in TABLE_ERRORS
    ):
        shown = mask_url(repr(value))
        msg += f" (got {shown if len(shown) <= 60 else shown[:57] + '...'})"
    return msg


# --------------------------------------------------------------------------- loading
def default_state_url(config_dir: Path) -> str:
    return f"sqlite:///{(config_dir / STATE_FILE_NAME).resolve().as_posix()}"


def _resolve_state_url(url: str | None, config_dir: Path) -> str:
    """Fill in the default; a relative SQLite path is taken relative to the config file.

    (SQLAlchemy would take it relative to the working directory, so the same
    configuration would open a different database depending on where it is run.)
    """
    if url is None:
        return default_state_url(config_dir)
    prefix = "sqlite:///"
    if url.startswith(prefix):
        rest = url[len(prefix) :]
        path, sep, query = rest.partition("?")
        if (
            path
            and path != ":memory:"
            and not path.startswith("/")
            and not Path(path).is_absolute()
        ):
            return prefix + (config_dir / path).resolve().as_posix() + sep + query
    return url


def parse_toml(path: Path) -> tuple[dict[str, Any], str]:
    """Read and parse the file; every failure becomes a :class:`ConfigError` with a line."""
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [Problem(source, None, "", "file not found; write an example with `shopsync init`")]
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([Problem(source, None, "", f"not UTF-8 text ({exc.reason})")]) from None
    except OSError as exc:
        raise ConfigError([Problem(source, None, "", f"cannot read: {exc.strerror}")]) from None
    try:
        data = tomllib.loads(text)
    except RecursionError:
        # tomllib parses nested arrays and inline tables recursively
        raise ConfigError([Problem(source, None, "", f"not valid TOML: {MAX_NESTING}")]) from None
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(exc))
        detail = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        line = int(m.group(1)) if m else None
        col = f" (column {m.group(2)})" if m else ""
        raise ConfigError([Problem(source, line, "", f"not valid TOML: {detail}{col}")]) from None
    return data, text


def load_config(path: Path, env: Mapping[str, str] = os.environ) -> Config:
    """Load ``path`` plus the ``SHOPSYNC_*`` environment overrides into a :class:`Config`.

    Empty environment variables count as unset. After loading, ``config.state.url`` is
    always set. Raises :class:`ConfigError` naming file, line, key, problem and what is
    allowed, for every problem found at once.
    """
    path = Path(path)
    data, text = parse_toml(path)
    lines = locate_keys(text)
    from_env: dict[Loc, str] = {}
    for var, (table, key) in ENV_OVERRIDES.items():
        value = env.get(var)
        if not value:
            continue
        section = data.setdefault(table, {})
        if not isinstance(section, dict):
            continue  # the file's own error about [table] will be reported
        section[key] = value
        from_env[(table, key)] = var
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc: Loc = tuple(err["loc"])
            env_var = next((v for k, v in from_env.items() if loc[: len(k)] == k), None)
            key = dotted(loc)
            if env_var is not None:
                problems.append(
                    Problem(f"environment variable {env_var}", None, key, _describe(err, loc))
                )
            else:
                problems.append(Problem(str(path), _line_for(loc, lines), key, _describe(err, loc)))
        raise ConfigError(problems) from None
    state_url = _resolve_state_url(config.state.url, path.resolve().parent)
    return config.model_copy(update={"state": config.state.model_copy(update={"url": state_url})})
