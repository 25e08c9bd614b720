"""``stagegate evidence``: record engagements from other systems into a store; list what is missing.

``stagegate evidence import ENGAGEMENTS --mapping map.toml --store pipeline.sqlite`` reads an
engagement export (HubSpot, Marketo, iCalendar, or any CSV/JSON through ``--column``), records
what the map says each engagement satisfies, all or nothing, and with ``--advance`` moves every
deal whose next gate now holds. ``stagegate evidence missing --store ... --mapping ...`` lists,
per open deal, what the next gate still lacks and which source could supply it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

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
from stagegate.cli._options import pairs
from stagegate.errors import DefinitionError, StagegateError

FORMATS = ("hubspot", "marketo", "icalendar", "generic")


@app.group("evidence")
def evidence() -> None:
    """Evidence from other systems: record engagements into deals, list what is missing."""


store_option = click.option(
    "--store",
    "store_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The SQLite event store holding the deals.",
)
mapping_option = click.option(
    "--mapping",
    "mapping_path",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The evidence map (.toml or .json): which engagement satisfies which evidence.",
)


def _links(path: Path | None) -> dict[str, list[str]] | None:
    """Lead id -> deal ids from a CSV with ``leadId`` and ``opportunityId`` columns."""
    if path is None:
        return None
    import csv  # noqa: PLC0415

    links: dict[str, list[str]] = {}
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for row in csv.DictReader(handle):
                lead = (row.get("leadId") or "").strip()
                deal = (row.get("opportunityId") or row.get("externalOpportunityId") or "").strip()
                if lead and deal:
                    links.setdefault(lead, []).append(deal)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise click.BadParameter(
            f"cannot read {str(path)!r}: {exc}", param_hint="--links"
        ) from None
    return links


def _read(
    source: Path,
    fmt: str,
    *,
    system: str | None,
    columns: dict[str, str],
    links: dict[str, list[str]] | None,
    deal_pattern: str | None,
    assume_zone: str | None,
) -> Any:
    from stagegate.io.engagements import (  # noqa: PLC0415 - keeps --help fast
        read_engagements,
        read_hubspot_engagements,
        read_marketo_activities,
    )

    if fmt == "hubspot":
        return read_hubspot_engagements(source)
    if fmt == "marketo":
        return read_marketo_activities(source, links=links)
    if fmt == "icalendar":
        from stagegate.io.icalendar import read_icalendar  # noqa: PLC0415

        return read_icalendar(
            source, deal_pattern=deal_pattern, system=system or "calendar", assume_zone=assume_zone
        )
    if not system:
        raise click.BadParameter("the generic format needs --system NAME", param_hint="--system")
    return read_engagements(source, system=system, columns=columns, assume_zone=assume_zone)


def _guess_format(source: Path) -> str:
    suffix = source.suffix.lower()
    if suffix in {".ics", ".ical", ".ifb"}:
        return "icalendar"
    return "generic"


@evidence.command("import")
@click.argument("source", metavar="ENGAGEMENTS", type=click.Path(dir_okay=False, path_type=Path))
@mapping_option
@store_option
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default=None,
    help="The export's shape (default: icalendar for .ics files, else generic).",
)
@click.option("--system", default=None, help="Source system name (generic, icalendar).")
@click.option("--column", "columns", multiple=True, help="generic: our column=export header.")
@click.option(
    "--links",
    "links_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="marketo: CSV of leadId,opportunityId.",
)
@click.option("--deal-pattern", default=None, help="icalendar: regex whose group is the deal id.")
@click.option("--assume-zone", default=None, help="IANA zone of instants without an offset.")
@process_option
@click.option(
    "--recorded-at",
    default=None,
    help="ISO 8601 instant to record as 'recorded at' (default: now).",
)
@click.option("--advance", is_flag=True, help="Advance each deal whose next gate now holds.")
@click.option(
    "--actor",
    default="system:stagegate",
    show_default=True,
    help="Who advances deals (with --advance).",
)
@click.option("--dry-run", is_flag=True, help="Report what would be recorded; write nothing.")
@json_option
def import_evidence(
    source: Path,
    mapping_path: Path,
    store_path: Path,
    fmt: str | None,
    system: str | None,
    columns: tuple[str, ...],
    links_path: Path | None,
    deal_pattern: str | None,
    assume_zone: str | None,
    process_path: Path | None,
    recorded_at: str | None,
    advance: bool,
    actor: str,
    dry_run: bool,
    as_json: bool,
) -> int:
    """Record the evidence in ENGAGEMENTS into the deals of the store, all or nothing.

    Each engagement the map takes is recorded once per deal (a repeated import records nothing
    new); one that arrives after later events keeps its real instant as 'occurred at'.
    Exit 0 when the import was written (or, with --dry-run, would be), 2 for bad input.
    """
    from stagegate._time import now, parse_instant  # noqa: PLC0415
    from stagegate.io.engagements import record_evidence  # noqa: PLC0415
    from stagegate.io.evidence_map import load_evidence_map  # noqa: PLC0415
    from stagegate.store import SQLiteStore, inspect_file  # noqa: PLC0415

    try:
        if not store_path.exists():
            return fail(f"there is no event store {str(store_path)!r}", as_json=as_json)
        process = None if process_path is None else resolve_process(process_path, "b2b")
        evidence_map = load_evidence_map(mapping_path, process=process)
        instant = now() if recorded_at is None else parse_instant(recorded_at)
        result = _read(
            source,
            fmt or _guess_format(source),
            system=system,
            columns=pairs(columns, "--column", strip=True),
            links=_links(links_path),
            deal_pattern=deal_pattern,
            assume_zone=assume_zone,
        )
        inspect_file(store_path)
        with SQLiteStore(store_path) as store:
            if process is None:
                process = _only_process(evidence_map, store)
            outcome = record_evidence(
                store,
                result.engagements,
                evidence_map,
                recorded_at=instant,
                process=process,
                advance=advance,
                actor=actor,
                dry_run=dry_run,
            )
    except DefinitionError as error:
        return fail(
            str(error).splitlines()[0], as_json=as_json, problems=[str(p) for p in error.problems]
        )
    except StagegateError as error:
        return fail(f"nothing was recorded: {error}", as_json=as_json)
    findings = [*result.findings, *outcome.findings]
    deals = sorted({event.opportunity_id for event in outcome.events})
    if as_json:
        print_json(
            {
                "ok": True,
                "dry_run": dry_run,
                "rows_read": result.rows_read,
                "engagements": len(result.engagements),
                "recorded": outcome.recorded,
                "events": len(outcome.events),
                "deals": deals,
                "advanced": [{"opportunity_id": d, "stage": s} for d, s in outcome.advanced],
                "findings": [
                    {
                        "code": f.code,
                        "severity": f.severity.value,
                        "message": f.text("cli"),
                        "rows": list(f.rows),
                        "opportunity_id": f.opportunity_id,
                        "used": f.used,
                    }
                    for f in findings
                ],
            }
        )
        return EXIT_OK
    console = out_console()
    verb = "would record" if dry_run else "recorded"
    console.print(
        f"{verb} {outcome.recorded} of {len(result.engagements)} engagements "
        f"({len(outcome.events)} events on {len(deals)} deals) from {source}",
        markup=False,
    )
    for deal, stage in outcome.advanced:
        console.print(f"  {deal} advanced to {stage}", markup=False)
    for finding in findings:
        console.print(f"  {finding}", markup=False)
    return EXIT_OK


def _only_process(evidence_map: Any, store: Any) -> Any:
    """The process to check the map against: the one the store keeps (its latest version)."""
    kept = store.processes()
    names = {name for name, _ in kept}
    wanted = evidence_map.process
    if wanted is not None:
        versions = [(n, v) for n, v in kept if n == wanted]
    elif len(names) == 1:
        versions = kept
    else:
        versions = []
    if not versions:
        return None
    process = store.load_process(*versions[-1])
    problems = evidence_map.check(process)
    if problems:
        raise DefinitionError(problems, source="evidence map")
    return process


@evidence.command("missing")
@click.argument("deals", nargs=-1, metavar="[DEAL]...")
@mapping_option
@store_option
@json_option
def missing_command(
    deals: tuple[str, ...], mapping_path: Path, store_path: Path, as_json: bool
) -> int:
    """List what each open deal's next gate still lacks, and which source could supply it.

    Without DEAL ids, every open deal of the store.
    """
    from stagegate.decision import missing_evidence  # noqa: PLC0415
    from stagegate.io.evidence_map import load_evidence_map  # noqa: PLC0415
    from stagegate.store import SQLiteStore, UnknownOpportunityError, inspect_file  # noqa: PLC0415

    answers: list[dict[str, Any]] = []
    try:
        if not store_path.exists():
            return fail(f"there is no event store {str(store_path)!r}", as_json=as_json)
        evidence_map = load_evidence_map(mapping_path)
        inspect_file(store_path)
        with SQLiteStore(store_path) as store:
            for oid in deals or tuple(store.opportunity_ids()):
                log = store.load(oid)
                if not log:
                    raise UnknownOpportunityError(oid)
                process = store.load_process(log[0].process, log[0].process_version)
                from stagegate.opportunity import Opportunity  # noqa: PLC0415

                deal = Opportunity.replay(process, log)
                nxt = process.next_stage(deal.stage)
                if deal.is_closed or nxt is None:
                    if deals:
                        answers.append(
                            {
                                "opportunity_id": oid,
                                "stage": deal.stage,
                                "next": None,
                                "missing": [],
                            }
                        )
                    continue
                found = missing_evidence(process, log, evidence_map)
                answers.append(
                    {
                        "opportunity_id": oid,
                        "stage": deal.stage,
                        "next": nxt.id,
                        "missing": [m.to_dict() for m in found],
                    }
                )
    except DefinitionError as error:
        return fail(
            str(error).splitlines()[0], as_json=as_json, problems=[str(p) for p in error.problems]
        )
    except StagegateError as error:
        return fail(str(error), as_json=as_json)
    if as_json:
        print_json({"ok": True, "deals": answers})
        return EXIT_OK
    console = out_console()
    for answer in answers:
        if answer["next"] is None:
            console.print(
                f"{answer['opportunity_id']}: {answer['stage']} (closed or last)", markup=False
            )
            continue
        if not answer["missing"]:
            console.print(
                f"{answer['opportunity_id']}: {answer['stage']} -> {answer['next']}: "
                "nothing missing",
                markup=False,
            )
            continue
        console.print(
            f"{answer['opportunity_id']}: {answer['stage']} -> {answer['next']} needs:",
            markup=False,
        )
        for item in answer["missing"]:
            sources = "; ".join(item["sources"]) or "no mapped source: record it by hand"
            console.print(
                f"  - {item['criterion']}: {item['reason']} [from: {sources}]", markup=False
            )
    return EXIT_OK
