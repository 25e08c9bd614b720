"""``stagegate review``: a manager's weekly review per rep or team, from a store or a log."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from stagegate.cli import EXIT_OK
from stagegate.cli._app import (
    app,
    fail,
    json_option,
    out_console,
    print_json,
    process_option,
    read_events,
    resolve_process,
)
from stagegate.cli._options import parse_cli_instant
from stagegate.errors import DefinitionError, StagegateError
from stagegate.events import Event
from stagegate.process import Process


def _money(value: Decimal | None) -> str:
    return "" if value is None else f"{value:,.0f}"


def _ratio(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}x"


def _count(value: int | None) -> str:
    return "" if value is None else str(value)


def _document(result: Any, as_of: Any, since: Any) -> dict[str, Any]:
    def text(value: Any) -> Any:
        return str(value) if isinstance(value, Decimal) else value

    return {
        "ok": True,
        "as_of": as_of.isoformat(),
        "since": since.isoformat(),
        "by": list(result.by),
        "period": result.period,
        "currency": result.currency,
        "rows": [
            {
                "segment": dict(zip(result.by, row.segment, strict=True)),
                **{
                    name: text(getattr(row, name))
                    for name in (
                        "open_deals",
                        "pipeline",
                        "weighted",
                        "period_pipeline",
                        "period_weighted",
                        "quota",
                        "won",
                        "remaining",
                        "coverage",
                        "stalled",
                        "stale",
                        "next_step_overdue",
                        "small",
                    )
                },
                "changes": dict(row.changes),
            }
            for row in result.rows
        ],
    }


def _week_before(instant: datetime) -> datetime:
    """The default ``--since``: a week before ``instant``.

    Raises:
        click.BadParameter: that week starts before the year 1.
    """
    try:
        return instant - timedelta(days=7)
    except OverflowError:
        msg = f"{instant.isoformat()} is less than a week after the year 1; give --since too"
        raise click.BadParameter(msg, param_hint="--as-of") from None


def _events(events_path: str | None, store_path: Path | None) -> list[Event]:
    if (events_path is None) == (store_path is None):
        msg = "give an EVENTS file or --store PATH (one of them)"
        raise click.UsageError(msg)
    if store_path is not None:
        from stagegate.store._open import open_to_read  # noqa: PLC0415

        with open_to_read(store_path) as store:
            return list(store.scan())
    assert events_path is not None  # noqa: S101 - checked above
    return read_events(events_path)


@app.command(name="review")
@click.argument("events_path", metavar="EVENTS", required=False)
@click.option(
    "--store",
    "store_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Review the SQLite event store instead of an EVENTS file.",
)
@process_option
@click.option("--template", "template_name", default="b2b", show_default=True)
@click.option("--as-of", default=None, help="ISO instant of the review (default: last event).")
@click.option(
    "--since", default=None, help="ISO instant changes count from (default: --as-of minus 7 days)."
)
@click.option(
    "--by",
    "by",
    multiple=True,
    default=("owner",),
    show_default=True,
    help="Segment column(s) to review by: owner, team, region, ... (repeat for several).",
)
@click.option(
    "--quotas",
    "quotas_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="CSV of quotas: a column named like the first --by, then period and amount.",
)
@click.option(
    "--rates",
    "rates_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="CSV of exchange rates (date,currency,rate) into --currency.",
)
@click.option("--currency", default=None, help="The reporting currency of --rates (e.g. USD).")
@click.option("--default-currency", default=None, help="Currency of deals that name none.")
@click.option("--period", type=click.Choice(["quarter", "month"]), default="quarter")
@click.option(
    "--activity-days",
    default=14.0,
    show_default=True,
    help="Days without logged activity after which a deal is stale.",
)
@click.option(
    "--estimator",
    default="deal_clock",
    show_default=True,
    help="The probability that weights the pipeline.",
)
@json_option
def review_command(
    events_path: str | None,
    store_path: Path | None,
    process_path: Path | None,
    template_name: str,
    as_of: str | None,
    since: str | None,
    by: tuple[str, ...],
    quotas_path: Path | None,
    rates_path: Path | None,
    currency: str | None,
    default_currency: str | None,
    period: str,
    activity_days: float,
    estimator: str,
    as_json: bool,
) -> int:
    """A manager's weekly review per rep, team or region: pipeline, quotas, health, changes.

    One row per segment: the open and weighted pipeline, the period's share of both, quota
    coverage (with --quotas), stalled and stale deals, and what changed since last week.

    Reads an EVENTS file (JSON array or JSON Lines, as Event.to_dict writes them) or a --store.
    Each deal counts for the owner (team, ...) in force at --as-of; won and lost deals for the
    one at their close. Amounts in several currencies need --rates and --currency.
    """
    from stagegate import analytics as an  # noqa: PLC0415
    from stagegate.currency import RateTable  # noqa: PLC0415

    if (rates_path is None) != (currency is None):
        return fail("--rates and --currency go together", as_json=as_json)
    try:
        process: Process = resolve_process(process_path, template_name)
        events = [e for e in _events(events_path, store_path) if e.process == process.name]
        if not events:
            return fail(f"no events of process {process.name!r} to review", as_json=as_json)
        instant = (
            max(e.at for e in events) if as_of is None else parse_cli_instant(as_of, "--as-of")
        )
        start = _week_before(instant) if since is None else parse_cli_instant(since, "--since")
        quotas = None if quotas_path is None else an.QuotaTable.read_csv(quotas_path, by=by[0])
        rates = (
            None
            if rates_path is None or currency is None
            else RateTable.read_csv(rates_path, reporting=currency)
        )
        result = an.weekly_review(
            events,
            process,
            as_of=instant,
            since=start,
            by=by,
            quotas=quotas,
            period=period,
            estimator=estimator,
            activity_days=activity_days,
            rates=rates,
            default_currency=default_currency,
        )
    except DefinitionError as error:
        return fail(
            "the process definition is invalid",
            as_json=as_json,
            problems=[str(p) for p in error.problems],
        )
    except (StagegateError, OSError) as error:
        return fail(str(error), as_json=as_json)
    if as_json:
        print_json(_document(result, instant, start))
        return EXIT_OK
    money = f" ({result.currency})" if result.currency else ""
    table = Table(
        title=f"Weekly review by {', '.join(result.by)}, {result.period}, as of "
        f"{instant:%Y-%m-%d} (changes since {start:%Y-%m-%d}){money}"
    )
    for name in (*result.by, "open", "pipeline", "weighted", "this period", "quota",
                 "coverage", "stalled", "stale", "changes"):  # fmt: skip
        table.add_column(name, justify="left" if name in (*result.by, "changes") else "right")
    for row in result.rows:
        changed = ", ".join(f"{kind.replace('_', ' ')} {n}" for kind, n in row.changes.items() if n)
        table.add_row(
            *(value or "(none)" for value in row.segment),
            f"{row.open_deals}{'*' if row.small else ''}",
            _money(row.pipeline),
            _money(row.weighted),
            _money(row.period_pipeline),
            _money(row.quota),
            _ratio(row.coverage),
            str(row.stalled),
            _count(row.stale),
            changed,
        )
    console = out_console()
    console.print(table)
    console.print("* fewer than 30 open deals: too few to say much")
    return EXIT_OK
