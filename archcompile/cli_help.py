"""How ``archc --help`` shows options: typer (0.29) writes ``<bool>`` after
every flag, which reads as if ``--force`` took a value. Flags get no type
label; every other option keeps typer's (``<int>``, the choices of an enum)."""

from __future__ import annotations

from typer.core import TyperOption

_typer_type_label = TyperOption.display_type_rich


def _type_label(self: TyperOption, ctx) -> str | None:
    """No label for a flag (``--json``, ``--help``); typer's for the rest."""
    if self.is_flag and self.metavar is None:
        return None
    return _typer_type_label(self, ctx)


def hide_flag_types() -> None:
    """Install the label rule; called once when the CLI module is imported."""
    TyperOption.display_type_rich = _type_label
