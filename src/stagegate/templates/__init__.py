"""Built-in process templates, shipped as data files.

>>> process = b2b()
>>> [stage.id for stage in process.stages]  # doctest: +NORMALIZE_WHITESPACE
['lead_generation', 'qualification', 'needs_analysis', 'solution_proposal', 'negotiation',
 'contract', 'won', 'lost']
>>> process.stage("negotiation").labels["ko"]
'협상'
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from stagegate.definition import process_from_toml
from stagegate.process import Process

__all__ = ["TEMPLATES", "b2b", "template", "template_text"]

TEMPLATES = ("b2b",)
"""Names of the built-in templates."""


def template_text(name: str) -> str:
    """Return the TOML text of a built-in template, to copy and adapt.

    Raises:
        DefinitionError: there is no template of that name.
    """
    if name not in TEMPLATES:
        from stagegate.errors import DefinitionError, Problem  # noqa: PLC0415

        raise DefinitionError(
            [Problem("", f"no built-in template {name!r}; choose one of {', '.join(TEMPLATES)}")]
        )
    return resources.files(__name__).joinpath(f"{name}.toml").read_text("utf-8")


@cache
def template(name: str) -> Process:
    """Return a built-in template as a :class:`~stagegate.process.Process` (loaded once)."""
    return process_from_toml(template_text(name))


def b2b() -> Process:
    """The reference 7-stage B2B process: lead generation to contract, then won or lost."""
    return template("b2b")
