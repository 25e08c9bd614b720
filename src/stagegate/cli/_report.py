"""``stagegate simulate`` and ``stagegate report``: a sample pipeline, and its health report."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import attrs
import click
from rich.cells import cell_len
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from stagegate._progress import Phases, phase_of
from stagegate.cli import EXIT_OK
from stagegate.cli._app import (
    app,
    fail,
    json_option,
    out_console,
    print_json,
    process_option,
    resolve_process,
)
from stagegate.cli._options import parse_cli_instant
from stagegate.cli._progress import bars
from stagegate.cli._store import EXISTING_STORE
from stagegate.errors import DefinitionError, StagegateError
from stagegate.process import Process
from stagegate.report._i18n import (
    ENGLISH,
    Catalogue,
    catalogue,
    cycle_explanation,
    estimator_reason,
)
from stagegate.store import EventStore, UnknownProcessError
from stagegate.store._open import open_to_read
from stagegate.templates import template


@app.command()
@click.option("--deals", default=2000, show_default=True, help="How many opportunities.")
@click.option("--seed", default=7, show_default=True, help="Random seed (same seed, same data).")
@click.option("--span-days", default=365.0, show_default=True, help="Days over which deals arrive.")
@click.option(
    "--mode",
    type=click.Choice(["markov", "informative"]),
    default="markov",
    show_default=True,
    help="informative: a deal's fate drives its pace in every stage and its close-date "
    "pushes (adversarial to stage-by-stage estimators).",
)
@click.option(
    "--lost-dwell-factor",
    default=2.5,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="How much longer deals that will be lost dwell.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Where to write the events (.jsonl, .csv or .parquet).",
)
@json_option
def simulate(
    deals: int,
    seed: int,
    span_days: float,
    mode: str,
    lost_dwell_factor: float,
    out: Path,
    as_json: bool,
) -> int:
    """Generate a realistic, seeded sample pipeline on the built-in b2b process.

    Deals arrive over --span-days; the history written ends there, so the deals still running
    are open. Each deal has an owner, team, manager and region, and some are reassigned once.
    Won and lost deals dwell differently, close dates slip, and the true win
    probability of every stage is known (printed), so estimators can be checked against it.
    """
    from stagegate.io import write_events  # noqa: PLC0415
    from stagegate.simulate import PipelineModel  # noqa: PLC0415
    from stagegate.simulate import simulate as run  # noqa: PLC0415

    if deals < 1:
        return fail("--deals must be at least 1", as_json=as_json)
    process = template("b2b")
    try:
        model = PipelineModel(lost_dwell_factor=lost_dwell_factor)
        sim = run(
            deals,
            seed=seed,
            span_days=span_days,
            process=process,
            model=model,
            mode=mode,
            segments=True,  # owners, teams, managers and regions, for by= and the report
        )
        # A real export holds history up to now: deals still running at as_of stay open.
        written = write_events(out, (e for e in sim.events if e.at <= sim.as_of))
    except (StagegateError, OSError) as error:
        return fail(str(error), as_json=as_json)
    truth = {k: round(v, 4) for k, v in sim.true_win_probabilities.items()}
    realized = {k: None if v is None else round(v, 4) for k, v in sim.truth.win_probability.items()}
    dwell = {
        stage: {o: None if d is None else round(d, 2) for o, d in by_outcome.items()}
        for stage, by_outcome in sim.truth.dwell_median_days.items()
    }
    summary = {
        "ok": True,
        "out": str(out),
        "deals": deals,
        "events": written,
        "seed": seed,
        "mode": mode,
        "as_of": sim.as_of.isoformat(),
        "true_win_probabilities": truth,
        "realized_win_probabilities": realized,
        "true_dwell_median_days": dwell,
    }
    if as_json:
        print_json(summary)
    else:
        console = out_console()
        console.print(
            f"wrote {deals} deals ({written} events) to {out}; as of {sim.as_of:%Y-%m-%d}"
        )
        console.print(
            "true win probability by stage: "
            + ", ".join(f"{stage} {p:.0%}" for stage, p in truth.items())
        )
    return EXIT_OK


FRAMES_FROM = 200_000
"""``--engine auto`` runs the analytics on Polars from this many stored events on."""


def _use_frames(engine: str, total: int) -> bool:
    if engine == "python":
        return False
    try:
        import polars as pl  # noqa: F401, PLC0415 - optional
    except ImportError:
        if engine == "polars":
            msg = "--engine polars needs Polars: pip install 'stagegate[frames]' polars"
            raise click.UsageError(msg) from None
        return False
    return engine == "polars" or total >= FRAMES_FROM


def _store_process(store: EventStore) -> Process:
    """The process stored with the events (the newest version of the only one stored)."""
    stored = store.processes()
    if not stored:
        return template("b2b")
    names = {name for name, _ in stored}
    if len(names) > 1:
        listed = ", ".join(sorted(names))
        msg = f"the store holds several processes ({listed}); choose one with --process"
        raise click.UsageError(msg)
    name, version = max(stored, key=lambda item: (len(item[1]), item[1]))
    return store.load_process(name, version)


@app.command()
@click.option(
    "--store",
    "store_path",
    type=EXISTING_STORE,
    required=True,
    help="The event store to report on: a SQLite file or a postgresql:// URL.",
)
@process_option
@click.option("--template", "template_name", default=None, help="Built-in template to use.")
@click.option("--as-of", default=None, help="ISO instant of the report (default: last event).")
@click.option("--cutoff", default=None, help="ISO instant splitting the backtest.")
@click.option(
    "--estimator",
    default=None,
    metavar="NAME",
    help="The probability estimator of every weighted figure (one of "
    "stagegate.analytics.ESTIMATORS; default: the best-calibrated one by the backtest, or the "
    "configured probabilities where the backtest cannot decide).",
)
@click.option(
    "--findings",
    "findings_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="The output of 'stagegate import --json': its findings join the data-quality section "
    "(default: the findings the store kept from its imports).",
)
@click.option("--seed", default=0, show_default=True, help="Seed of the Monte Carlo forecast.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--title", default=None, help="Title of the report.")
@click.option(
    "--language",
    type=click.Choice(["en", "ko"]),
    default="en",
    show_default=True,
    help="Language of the page and the terminal summary (interface text and stage labels).",
)
@click.option(
    "--engine",
    type=click.Choice(["auto", "python", "polars"]),
    default="auto",
    show_default=True,
    help="Where the analytics run; auto uses Polars (if installed) from 200,000 events on.",
)
@click.option(
    "--by",
    "by",
    multiple=True,
    metavar="COLUMN",
    help="Add the segment section, one row per value of this segment column (owner, team, "
    "region, ...): repeat it or separate columns by commas for several (--by region,team).",
)
@click.option(
    "--flag-pushes",
    default=2,
    show_default=True,
    type=click.IntRange(min=1),
    help="Deals whose close date was pushed at least this many times are slipping.",
)
@click.option(
    "--top",
    default=25,
    show_default=True,
    type=click.IntRange(min=1),
    help="Longest lists kept: stalled and slipping deals, and deals at risk per segment.",
)
@click.option(
    "--quiet",
    is_flag=True,
    help="Draw no progress bars (they are drawn on standard error only when it is a terminal).",
)
@json_option
def report(**values: Any) -> int:
    """Report pipeline health from an event store: tables, --json, or an --html file.

    On Polars the store is read column-wise (no Python object per event) and every section is
    computed on frames; progress bars show reading, computing and rendering. --by owner adds
    the segment section: whose deals are stalled and slipping, and whose forecast is soft.
    """
    from stagegate.analytics import ESTIMATORS  # noqa: PLC0415

    options = ReportOptions(**values)
    as_json = options.as_json
    if options.estimator is not None and options.estimator not in ESTIMATORS:
        return fail(
            f"--estimator {options.estimator!r} is unknown; choose one of {', '.join(ESTIMATORS)}",
            as_json=as_json,
        )
    try:
        with bars(quiet=options.quiet or as_json) as phases:
            document = _report(options, phases)
    except UnknownProcessError as error:
        return fail(f"{error}; pass --process FILE", as_json=as_json)
    except DefinitionError as error:
        return fail(
            "the process definition is invalid",
            as_json=as_json,
            problems=[str(p) for p in error.problems],
        )
    except (StagegateError, OSError) as error:
        return fail(str(error), as_json=as_json)
    if isinstance(document, int):
        return document
    if as_json:
        print_json(document)
    else:
        _print(out_console(), document, options.html_path, top=options.top)
    return EXIT_OK


@attrs.frozen
class ReportOptions:
    """The options of ``stagegate report``, declared once (the click options above)."""

    store_path: Path
    process_path: Path | None
    template_name: str | None
    as_of: str | None
    cutoff: str | None
    estimator: str | None
    findings_path: Path | None
    seed: int
    html_path: Path | None
    title: str | None
    language: str
    engine: str
    by: tuple[str, ...]
    flag_pushes: int
    top: int
    quiet: bool
    as_json: bool

    @property
    def columns(self) -> tuple[str, ...] | None:
        """The segment columns of ``--by`` (repeated or comma-separated), or ``None``."""
        found = tuple(dict.fromkeys(c.strip() for v in self.by for c in v.split(",") if c.strip()))
        return found or None


FRAME_COLUMNS = (
    "opportunity_id",
    "at",
    "seq",
    "stage",
    "amount",
    "close_date",
    "reason",
    "kind",
    "move",
    "process",
    "process_version",
)
"""The columns of the store the report reads (segment columns follow when there are any)."""


def _report(options: ReportOptions, phases: Phases | None) -> dict[str, Any] | int:
    """The report document (or the exit code of a failure, already reported)."""
    from stagegate.report import build_document  # noqa: PLC0415

    store_path, process_path, findings_path = (
        options.store_path,
        options.process_path,
        options.findings_path,
    )
    template_name, as_of, cutoff = options.template_name, options.as_of, options.cutoff
    language, title, html_path, as_json = (
        options.language,
        options.title,
        options.html_path,
        options.as_json,
    )

    findings = () if findings_path is None else _read_findings(findings_path)
    with open_to_read(store_path) as store:
        total = store.count()
        if total == 0:
            return fail(f"{store_path} holds no events; import some first", as_json=as_json)
        if findings_path is None:
            # what every import into this store found joins the data-quality section
            findings = tuple(f for record in store.imports() for f in record.findings)
        if process_path is not None or template_name is not None:
            process = resolve_process(process_path, template_name or "b2b")
        else:
            process = _store_process(store)
        data: Any
        if _use_frames(options.engine, total):
            import polars as pl  # noqa: PLC0415 - optional, present by _use_frames

            data = store.to_frame(
                columns=FRAME_COLUMNS,
                categorical=True,
                segments=options.columns is not None,  # only --by reads the segment columns
                phases=phases,
            )
            other = pl.col("process") != process.name
            if data.select(other.any()).item():  # events of other processes are left out
                data = data.filter(~other)
            data = data.drop("process")
            last = data["at"].max()
        else:
            data = [e for e in store.scan() if e.process == process.name]
            last = max(e.at for e in data) if data else None
        if sum(name == process.name for name, _ in store.processes()) > 1:
            from stagegate.evolution import lineage, map_history  # noqa: PLC0415

            # history under earlier versions counts in the stages of this one
            found = lineage(store, process) if not isinstance(data, list) else None
            data = map_history(data, process, lineage_of=found)
    if last is None:
        return fail(f"{store_path} holds no events of {process.name!r}", as_json=as_json)
    instant = last if as_of is None else parse_cli_instant(as_of, "--as-of")
    split = None if cutoff is None else parse_cli_instant(cutoff, "--cutoff")
    if title is None and language != "en":
        title = catalogue(language)("Pipeline health: {process}", process=process.name)
    # handed over, not kept here: the report lets go of the log once it is prepared
    log, data = [data], None
    document = build_document(
        log.pop(),
        process,
        as_of=instant,
        title=title,
        cutoff=split,
        estimator=options.estimator,
        seed=options.seed,
        findings=findings,
        phases=phases,
        by=options.columns,
        flag_pushes=options.flag_pushes,
        top=options.top,
    )
    document["language"] = language
    if html_path is not None:
        tick = phase_of(phases, "rendering", 1)
        _write_page(document, html_path)
        tick(1)
    return document


def _write_page(document: dict[str, Any], path: Path) -> None:
    """Write the report's HTML page to ``path`` whole or not at all.

    A regular file is written beside ``path`` and renamed over it, so a full disk leaves no
    half page (and an older page stays); a device or a pipe (``/dev/stdout``) is written as is.

    Raises:
        StoreUnwritableError: the page cannot be written, with what to do.
    """
    from stagegate.report import render_html  # noqa: PLC0415
    from stagegate.store import StoreUnwritableError  # noqa: PLC0415

    page = render_html(document).encode("utf-8")
    direct = path.exists() and not path.is_file()
    temporary = path if direct else path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        temporary.write_bytes(page)
        if not direct:
            temporary.replace(path)
    except OSError as exc:
        if not direct:
            temporary.unlink(missing_ok=True)
        msg = (
            f"cannot write the report to {str(path)!r} ({exc.strerror or exc}); nothing was "
            "written there: free some space, or choose a writable folder"
        )
        raise StoreUnwritableError(msg) from None


def _read_findings(path: Path) -> tuple[Any, ...]:
    """The findings of a ``stagegate import --json`` output file, as ``stagegate.io`` findings."""
    from stagegate.io import Finding, Severity  # noqa: PLC0415

    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
        rows = loaded["findings"] if isinstance(loaded, dict) else loaded
        return tuple(
            Finding(
                str(row["code"]),
                Severity(row["severity"]),
                str(row["message"]),
                rows=row.get("rows") or (),
                opportunity_id=row.get("opportunity_id"),
                used=bool(row.get("used", True)),
            )
            for row in rows
        )
    except (ValueError, KeyError, TypeError) as error:
        msg = (
            f"--findings {str(path)!r} is not the output of 'stagegate import --json' "
            f"({type(error).__name__}: {error}); write it with: stagegate import FILE --json"
        )
        raise click.UsageError(msg) from None


def _fmt(value: Any, kind: str = "") -> str:
    if value is None:
        return "-"
    if kind == "%":
        return f"{value:.0%}"
    if kind == "d":
        return f"{value:.1f}"
    if kind == "$":
        return f"{value:,.0f}"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _has(document: dict[str, Any], estimator: str) -> bool:
    """Whether the document's probability rows carry a column for ``estimator``."""
    return any(estimator in p for p in document.get("probabilities", []))


def _used(estimator: str, used: str | None, t: Catalogue = ENGLISH) -> str:
    """A probability column's heading, marked when it is the report's estimator."""
    heading = t(estimator) if estimator in ("configured", "empirical") else estimator
    return t("{column} (used)", column=heading) if estimator == used else heading


def _table(title: str, columns: Iterable[str], t: Catalogue = ENGLISH) -> Table:
    table = Table(title=title, title_justify="left", title_style="bold")
    for column in columns:
        if column in (t("stage"), t("deal"), t("segment")):
            # names wrap at spaces and are never cut; a single long word folds only past 14
            width = 8 if column == t("deal") else 14
            table.add_column(column, justify="left", overflow="fold", min_width=width)
        else:
            # headings wrap at spaces, never inside a word
            widest = max(cell_len(word) for word in column.split())
            table.add_column(column, justify="right", min_width=widest)
    return table


def _print(
    console: Console, document: dict[str, Any], html_path: Path | None, *, top: int = 25
) -> None:
    tx = catalogue(document.get("language"))
    s = document["summary"]
    console.print(
        tx(
            "[bold]{title}[/] as of {as_of}",
            title=escape(document["title"]),
            as_of=document["as_of"][:10],
        )
    )
    console.print(
        tx(
            "{n} deals: {open} open, {won} won, {lost} lost; win rate {win_rate}; open pipeline "
            "{open_amount} (weighted by {estimator}: {weighted}); median won cycle {cycle} days",
            n=s["opportunities"],
            open=s["open"],
            won=s["won"],
            lost=s["lost"],
            win_rate=_fmt(s["win_rate"], "%"),
            open_amount=_fmt(s["open_amount"], "$"),
            estimator=s.get("weighted_estimator") or "-",
            weighted=_fmt(s["weighted_amount"], "$"),
            cycle=_fmt(s["median_cycle_days"], "d"),
        )
    )
    chosen = document.get("estimator")
    if chosen:
        console.print(
            tx(
                "estimator [bold]{name}[/]: {reason}",
                name=chosen["name"],
                reason=estimator_reason(document, tx),
            )
        )
    language = tx.language
    labels = {
        st["id"]: (st.get("labels") or {}).get(language) or st.get("label") or st["id"]
        for st in document["process"]["stages"]
    }
    used = (chosen or {}).get("name")
    # the full side-by-side is in --json and the HTML page; the terminal keeps the censoring-aware
    # default and the estimator in use
    shown = [e for e in dict.fromkeys(("deal_clock", used or "")) if _has(document, e)]
    table = _table(
        tx("probability by stage"),
        (
            tx("stage"),
            _used("configured", used, tx),
            _used("empirical", used, tx),
            tx("95% CI"),
            "n",
            *(_used(e, used, tx) for e in shown),
        ),
        tx,
    )
    for p in document.get("probabilities", []):
        table.add_row(
            escape(labels.get(p["stage"], p["stage"])),
            _fmt(p["configured"], "%"),
            _fmt(p["empirical"], "%"),
            f"{_fmt(p['low'], '%')}-{_fmt(p['high'], '%')}",
            str(p["n"]),
            *(_fmt(p.get(e), "%") for e in shown),
        )
    console.print(table)
    backtest = document.get("backtest")
    if backtest:
        best = (
            tx("best calibrated estimator [bold]{name}[/]", name=backtest["best"])
            if backtest["best"]
            else tx("[yellow]no winner[/]: {warning}", warning=backtest["warning"])
        )
        console.print(
            tx("backtest (split {cutoff}): {best}", cutoff=backtest["cutoff"][:10], best=best)
            + " ("
            + ", ".join(f"{b['estimator']} Brier {_fmt(b['brier'])}" for b in backtest["scores"])
            + ")"
        )
    table = _table(
        tx("days in stage (medians; closed only, and on the deal clock counting open deals)"),
        (
            tx("stage"),
            tx("won (closed)"),
            tx("lost (closed)"),
            tx("lost/won"),
            tx("won (deal clock)"),
            tx("lost (deal clock)"),
            tx("still open"),
        ),
        tx,
    )
    for t in document.get("time_in_stage", []):
        table.add_row(
            escape(labels.get(t["stage"], t["stage"])),
            _fmt(t["won_median_days"], "d"),
            _fmt(t["lost_median_days"], "d"),
            _fmt(t["lost_to_won_median_ratio"]),
            _fmt(t.get("won_deal_clock_median_days"), "d"),
            _fmt(t.get("lost_deal_clock_median_days"), "d"),
            _fmt(t.get("open_share"), "%"),
        )
    console.print(table)
    cycle = document.get("cycle_time", {})
    if cycle:
        console.print(cycle_explanation(cycle, tx))
    counted = document.get("stalled_count") or {"total": 0, "shown": 0}
    table = _table(
        tx(
            "stalled deals ({total}, first {shown} shown)",
            total=counted["total"],
            shown=min(10, counted["shown"]),
        ),
        (tx("deal"), tx("stage"), tx("days"), tx("limit"), tx("x won median"), tx("amount")),
        tx,
    )
    for d in document.get("stalled", [])[:10]:
        table.add_row(
            escape(d["opportunity_id"]),
            escape(labels.get(d["stage"], d["stage"])),
            _fmt(d["days_in_stage"], "d"),
            f"{_fmt(d['limit_days'], 'd')} ({d['limit_source']})",
            _fmt(d["times_won_median"]),
            _fmt(d["amount"], "$"),
        )
    console.print(table)
    table = _table(
        tx("slipping deals"),
        (tx("deal"), tx("pushes"), tx("days pushed"), tx("close date"), tx("amount")),
        tx,
    )
    for d in document.get("slipping", [])[:10]:
        table.add_row(
            escape(d["opportunity_id"]),
            str(d["pushes"]),
            str(d["days_pushed"]),
            d["close_date"] or "-",
            _fmt(d["amount"], "$"),
        )
    console.print(table)
    method = document.get("forecast_method") or {}
    table = _table(
        tx(
            "forecast of won amount (weighted by {estimator})",
            estimator=method.get("estimator", "-"),
        ),
        (tx("period"), tx("deals"), tx("weighted"), "P10", "P50", "P90"),
        tx,
    )
    for f in document.get("forecast", []):
        table.add_row(
            f["period"],
            str(f["n"]),
            _fmt(f["weighted"], "$"),
            _fmt(f["p10"], "$"),
            _fmt(f["p50"], "$"),
            _fmt(f["p90"], "$"),
        )
    console.print(table)
    if document.get("segments"):
        _print_segments(console, document["segments"], tx, labels, top)
    for q in document.get("data_quality", []):
        console.print(
            f"[yellow]{escape(tx(q['severity']))}[/] {escape(q['code'])}: {q['count']} "
            f"{escape(tx.known(q['message']) or q['message'])}"
        )
    if html_path is not None:
        console.print(tx("HTML report written to {path}", path=html_path))


SEGMENTS_SHOWN_WITH_DEALS = 5
"""The riskiest segments whose deals at risk the terminal lists (all are in --json, HTML)."""
DEALS_SHOWN = 3
"""Deals at risk the terminal lists per segment."""


def _reasons(deal: dict[str, Any], tx: Catalogue) -> str:
    names = {
        "stalled": tx("stalled"),
        "stale": tx("no activity"),
        "slipping": tx("slipping"),
        "overdue": tx("overdue"),
    }
    return ", ".join(names.get(r, r) for r in deal["reasons"])


def _print_segments(
    console: Console,
    section: dict[str, Any],
    tx: Catalogue,
    labels: dict[str, str],
    top: int,
) -> None:
    """The segment section: one row per segment, riskiest first, then their deals at risk."""
    rows = section["rows"]
    by = ", ".join(section["by"])
    table = _table(
        tx(
            "by {by}: forecast {period} (weighted by {estimator}), riskiest first ({shown} of "
            "{total})",
            by=by,
            period=section["period"],
            estimator=section["estimator"],
            shown=min(top, len(rows)),
            total=len(rows),
        ),
        (
            tx("segment"),
            tx("open"),
            tx("pipeline"),
            tx("forecast"),
            tx("soft (share)"),
            tx("stalled"),
            tx("no activity"),
            tx("slipping / pushes"),
            tx("overdue"),
            tx("win rate"),
            tx("won cycle"),
        ),
        tx,
    )
    cells = [
        (
            escape(r["label"]),
            str(r["open_deals"]),
            _fmt(r["pipeline"], "$"),
            _fmt(r["forecast"], "$"),
            f"{_fmt(r['soft_forecast'], '$')} ({_fmt(r['soft_share'], '%')})",
            str(r["stalled_deals"]),
            "-" if r["stale_deals"] is None else str(r["stale_deals"]),
            f"{r['slipping_deals']} / {r['pushes']}",
            str(r["overdue_deals"]),
            _fmt(r["win_rate"], "%") + (" *" if r["small"] else ""),
            _fmt(r["median_cycle_days"], "d"),
        )
        for r in rows[:top]
    ]
    for index, column in enumerate(table.columns[1:], start=1):
        # an amount is never cut: its column is at least as wide as its widest word
        words = [w for row in cells for w in row[index].split()]
        column.min_width = max(column.min_width or 0, *(cell_len(w) for w in words), 1)
    for row in cells:
        table.add_row(*row)
    console.print(table)
    console.print(escape(_definition(section, tx)))
    console.print(tx("* fewer than 30 closed deals: the win rate and cycle say little"))
    table = _table(
        tx("deals at risk in the riskiest segments"),
        (tx("segment"), tx("deal"), tx("stage"), tx("weighted"), tx("close date"), tx("why")),
        tx,
    )
    for r in rows[:SEGMENTS_SHOWN_WITH_DEALS]:
        for d in r["deals"][:DEALS_SHOWN]:
            table.add_row(
                escape(r["label"]),
                escape(d["opportunity_id"]),
                escape(labels.get(d["stage"], d["stage"])),
                _fmt(d["weighted"], "$"),
                d["close_date"] or "-",
                _reasons(d, tx),
            )
    console.print(table)


def _definition(section: dict[str, Any], tx: Catalogue) -> str:
    """The soft forecast's definition in the catalogue's language."""
    return tx(
        "Soft forecast: the share of a segment's weighted forecast for the current period that "
        "rests on deals at risk (stalled in their stage, without activity for {activity_days} "
        "days, pushed at least {flag_pushes} times, or past their expected close date). Firm up "
        "or take out those deals first.",
        activity_days=f"{section['activity_days']:g}",
        flag_pushes=section["flag_pushes"],
    )
