"""The one settings reader: declarations, parsers, and the README rows they make.

A settings group is a frozen dataclass whose fields are declared with `setting(...)`
(one environment variable each: its name, parser, default and documentation, once) or
with `group(...)` (a nested group). `read(Group, env)` reads the environment once and
returns the frozen value; nothing reads the environment after that.

    @dataclass(frozen=True)
    class CacheSettings(SettingsGroup):
        size: int = setting("PORTCULLIS_CACHE_SIZE", whole(minimum=1), 1000, "entries kept")

Parsers get the stripped value (an empty or blank variable means the default) and raise
SettingsError naming the variable. A port (`port`) is listed in the README's ports
table; every other setting in its "Other settings" table (tests/test_settings.py holds
the README against the declarations both ways).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Generic, Iterator, Mapping, TypeVar

T = TypeVar("T")
G = TypeVar("G", bound="SettingsGroup")

REPO_ROOT = Path(__file__).resolve().parent.parent
_SETTING = "portcullis.setting"
_GROUP = "portcullis.group"


class SettingsError(ValueError):
    """A setting from the environment is malformed."""


@dataclass(frozen=True)
class Parser(Generic[T]):
    """Turns a variable's text into a value; `kind` says what the README calls it."""

    kind: str
    parse: Callable[[str, str], T]   # (variable name, stripped text) -> value
    format: Callable[[T], str] | None = None   # value -> text this parser reads back (default: render_value)

    def __call__(self, name: str, raw: str) -> T:
        return self.parse(name, raw)

    def text_of(self, value: T) -> str:
        return self.format(value) if self.format is not None else render_value(value)


@dataclass(frozen=True)
class Setting:
    """One environment variable: what it is called, how it is read, what it defaults to."""

    name: str
    parser: Parser[Any]
    doc: str
    default: Any = None
    default_factory: Callable[[], Any] | None = None
    shown: str | None = None        # the default as the README says it, when not the literal value
    secret: bool = False            # never printed (repr, logs)

    def default_value(self) -> Any:
        return self.default_factory() if self.default_factory is not None else self.default

    def read(self, env: Mapping[str, str]) -> Any:
        raw = (env.get(self.name) or "").strip()
        return self.default_value() if raw == "" else self.parser(self.name, raw)

    @property
    def is_port(self) -> bool:
        return self.parser is port

    def shown_default(self) -> str:
        """The README's default cell."""
        if self.shown is not None:
            return self.shown
        return f"`{self.parser.text_of(self.default_value())}`"


def render_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Path):
        try:
            return str(value.relative_to(REPO_ROOT)) + "/"
        except ValueError:
            return str(value)
    return "" if value is None else str(value)


def setting(name: str, parser: Parser[T], default: T | None = None, doc: str = "", *,
            default_factory: Callable[[], T] | None = None, shown: str | None = None,
            secret: bool = False) -> Any:
    """A dataclass field read from the variable `name` (see the module docstring)."""
    if not doc:
        raise TypeError(f"{name}: every setting says what it does (doc=...)")
    declared = Setting(name=name, parser=parser, doc=doc, default=default,
                       default_factory=default_factory, shown=shown, secret=secret)
    metadata = {_SETTING: declared}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata, repr=not secret)
    return dataclasses.field(default=default, metadata=metadata, repr=not secret)


def group(cls: type[G]) -> Any:
    """A dataclass field holding a nested settings group (read from the same environment)."""
    return dataclasses.field(default_factory=cls, metadata={_GROUP: cls})


class SettingsGroup:
    """Base of the frozen settings dataclasses."""

    @classmethod
    def from_env(cls: type[G], env: Mapping[str, str] | None = None) -> G:
        return read(cls, os.environ if env is None else env)


def read(cls: type[G], env: Mapping[str, str]) -> G:
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if _SETTING in field.metadata:
            values[field.name] = field.metadata[_SETTING].read(env)
        elif _GROUP in field.metadata:
            values[field.name] = read(field.metadata[_GROUP], env)
    return cls(**values)


def declared(cls: type[SettingsGroup]) -> Iterator[tuple[str, Setting]]:
    """(field name, Setting) of a group and its nested groups, in declaration order."""
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        if _SETTING in field.metadata:
            yield field.name, field.metadata[_SETTING]
        elif _GROUP in field.metadata:
            yield from declared(field.metadata[_GROUP])


def declaration(cls: type[SettingsGroup], field_name: str) -> Setting:
    """The Setting behind one field, e.g. to read that one variable before the rest."""
    return cls.__dataclass_fields__[field_name].metadata[_SETTING]  # type: ignore[attr-defined]


def as_env(value: SettingsGroup) -> dict[str, str]:
    """The environment that makes a child process read these same settings (unset ones
    are left out, so the child derives them the same way)."""
    env: dict[str, str] = {}
    for field in dataclasses.fields(value):  # type: ignore[arg-type]
        current = getattr(value, field.name)
        if _SETTING in field.metadata:
            if current is not None and current != "":
                declared_setting = field.metadata[_SETTING]
                env[declared_setting.name] = str(current) if isinstance(current, Path) \
                    else declared_setting.parser.text_of(current)
        elif _GROUP in field.metadata:
            env.update(as_env(current))
    return env


def readme_row(declared_setting: Setting) -> tuple[str, str, str]:
    """The setting's row in the README: (what, default, variable) in the ports table,
    (variable, default, meaning) in the other settings table."""
    variable = f"`{declared_setting.name}`"
    if declared_setting.is_port:
        return declared_setting.doc, declared_setting.parser.text_of(declared_setting.default_value()), variable
    return variable, declared_setting.shown_default(), declared_setting.doc


# --- parsers ------------------------------------------------------------------------

def _port(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a port number") from None
    if not 0 < value < 65536:
        raise SettingsError(f"{name}={value} is outside 1..65535")
    return value


port: Parser[int] = Parser("port", _port)


def _flag(name: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise SettingsError(f"{name}={raw!r} must be true or false")


flag: Parser[bool] = Parser("true or false", _flag)


def _switch(name: str, raw: str) -> bool:
    lowered = raw.lower()
    if lowered not in ("on", "off"):
        raise SettingsError(f"{name} must be one of on, off, not {lowered!r}")
    return lowered == "on"


switch: Parser[bool] = Parser("on or off", _switch, lambda value: "on" if value else "off")


def whole(*, minimum: int = 0) -> Parser[int]:
    """A whole number of at least `minimum`."""
    def parse(name: str, raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is not a whole number") from None
        if value < minimum:
            raise SettingsError(f"{name}={value} must be at least {minimum}")
        return value
    return Parser(f"whole number >= {minimum}", parse)


def positive(*, maximum: float | None = None) -> Parser[float]:
    """A positive, finite number (seconds, hours), at most `maximum`."""
    def parse(name: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise SettingsError(f"{name}={raw!r} is not a number") from None
        if not (value > 0 and math.isfinite(value)):
            raise SettingsError(f"{name}={raw} must be a positive number")
        if maximum is not None and value > maximum:
            raise SettingsError(f"{name}={raw} must be at most {maximum:g}")
        return value
    return Parser("positive number", parse)


def choice(*options: str) -> Parser[str]:
    """One of `options`, case-insensitive."""
    def parse(name: str, raw: str) -> str:
        value = raw.lower()
        if value not in options:
            raise SettingsError(f"{name} must be one of {', '.join(options)}, not {value!r}")
        return value
    return Parser("one of " + ", ".join(options), parse)


def printable(*, max_length: int) -> Parser[str]:
    """Text of printable characters (no control characters), at most `max_length` long."""
    def parse(name: str, raw: str) -> str:
        if len(raw) > max_length or any(c < " " or c == "\x7f" for c in raw):
            raise SettingsError(f"{name} must be at most {max_length} printable characters")
        return raw
    return Parser("text", parse)


text: Parser[str] = Parser("text", lambda name, raw: raw)
url: Parser[str] = Parser("URL", lambda name, raw: raw.rstrip("/"))
path: Parser[Path] = Parser("path", lambda name, raw: Path(raw).resolve())
