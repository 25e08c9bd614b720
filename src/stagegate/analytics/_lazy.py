# ruff: noqa: S608 - the SQL is built from our own constants and quoted stage names
"""The lazy kernel (DuckDB, PySpark, ...): ordered windows and grouping, left in the engine.

Every step is a narwhals expression the engine plans and runs itself; nothing is collected
but small aggregates. Neighbouring rows are read with ordered window functions (ordered by
``(at, seq, stage order)``, so ties give the same answer as in memory), risk sets are running
sums over ``(group, dwell order)`` windows, and the deal clock's weights are a running count
over every deal's follow-up and every closed deal's age, joined back to the visits by deal.

On DuckDB the stage visits are one SQL query over the normalized rows (one window per deal,
shared by every neighbour read, as a hand-written query would), and what several
aggregations read is materialized once inside DuckDB.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import narwhals as nw

from stagegate.analytics._emit import collect_rows
from stagegate.analytics._table import (
    DAY_US,
    KIND_CODE,
    ORDER,
    by_stage,
    check_known,
    with_stage_codes,
)
from stagegate.analytics.outcomes import KINDS, Outcomes
from stagegate.analytics.survival import (
    HALF_WEIGHT,
    dwell_order,
    emptied,
    factor_expr,
    final_code,
    km_medians,
)

__all__ = ["DUCKDB", "LAZY", "DuckDBKernel", "LazyKernel"]


def _kind_name(column: str) -> nw.Expr:
    code = nw.col(column)
    return (
        nw.when(code == KIND_CODE["won"])
        .then(nw.lit("won"))
        .when(code == KIND_CODE["lost"])
        .then(nw.lit("lost"))
        .otherwise(nw.lit("open"))
    )


class LazyKernel:
    """The kernel of lazy engines: see the module's docstring."""

    def intervals(
        self, rows: nw.LazyFrame[Any], outcomes: Outcomes, as_of: int
    ) -> nw.LazyFrame[Any]:
        """Stage visits by ordered window functions over each deal."""
        opp = "opportunity_id"
        rows = rows.filter(nw.col("at_us") <= as_of)
        prev = nw.col("stage").shift(1).over(opp, order_by=ORDER)
        # narwhals' cum_count over an ordered window is wrong on pandas: sum a column of ones
        entries = rows.with_columns(from_stage=prev, one=nw.lit(1, nw.Int64)).filter(
            nw.col("from_stage").is_null() | (nw.col("from_stage") != nw.col("stage"))
        )
        kind_code = by_stage("stage", {s: KIND_CODE[k] for s, k in outcomes.kinds.items()}, 0)
        entries = entries.with_columns(
            exited_at=nw.col("at").shift(-1).over(opp, order_by=ORDER),
            exited_us=nw.col("at_us").shift(-1).over(opp, order_by=ORDER),
            next_stage=nw.col("stage").shift(-1).over(opp, order_by=ORDER),
            step=nw.col("one").cum_sum().over(opp, order_by=ORDER).cast(nw.Int32),
            visit=nw.col("one").cum_sum().over([opp, "stage"], order_by=ORDER).cast(nw.Int32),
            kind_code=kind_code.cast(nw.Int64),
        )
        last = nw.col("exited_us").is_null()
        open_visit = nw.col("kind_code") == 0
        entries = entries.with_columns(
            final=nw.when(last).then(nw.col("kind_code")).otherwise(nw.lit(-1)).max().over(opp),
            censored=last & open_visit,
            duration_days=nw.when(~last)
            .then((nw.col("exited_us") - nw.col("at_us")) / DAY_US)
            .when(open_visit)
            .then((nw.lit(as_of) - nw.col("at_us")) / DAY_US)
            .otherwise(nw.lit(None, nw.Float64)),
        )
        return entries.select(
            nw.col(opp),
            nw.col("stage"),
            _kind_name("kind_code").alias("kind"),
            nw.col("step"),
            nw.col("visit"),
            nw.col("from_stage"),
            nw.col("at").alias("entered_at"),
            nw.col("exited_at"),
            nw.col("at_us").alias("entered_us"),
            nw.col("exited_us"),
            nw.col("duration_days").cast(nw.Float64),
            nw.col("next_stage"),
            nw.col("censored"),
            _kind_name("final").alias("outcome"),
            nw.col("reason"),
            nw.col("amount"),
            nw.col("close_day"),
        )

    def keep(self, frame: nw.LazyFrame[Any]) -> nw.LazyFrame[Any]:
        """Cached on Spark (computed on first use); left to the engine elsewhere."""
        impl = frame.implementation
        if impl.is_pyspark() or impl.is_pyspark_connect():
            cached: nw.LazyFrame[Any] = nw.from_native(frame.to_native().cache()).lazy()
            return cached
        return frame

    def stage_groups(
        self, frame: nw.LazyFrame[Any], codes: Mapping[str, str], outcomes: Outcomes
    ) -> nw.LazyFrame[Any]:
        """A ``when/then`` chain; unknown stages are looked for first (they would read null)."""
        check_known(frame, codes, outcomes)
        if frame.implementation.is_pandas_like():
            # visits in memory handed on by the eager kernel: pandas 2 warns on when/then chains
            return with_stage_codes(frame.collect(), codes, outcomes.stages).lazy()
        ranks = {s: i for i, s in enumerate(outcomes.stages)}
        return frame.with_columns(
            by_stage(column, ranks).cast(nw.Int64).alias(name) for name, column in codes.items()
        )

    def risk_sets(
        self, visits: nw.LazyFrame[Any], *, tag: tuple[str, int] | None = None
    ) -> nw.LazyFrame[Any]:
        """Visits at risk and running log-survival by ordered windows per group."""
        kept = [tag[0]] if tag is not None else []
        # narwhals' cum_count over an ordered window is wrong on pandas: sum ones instead
        windowed = visits.select(
            "group",
            "censored",
            *kept,
            order=dwell_order(),
            one=nw.lit(1, nw.Int64),
        ).with_columns(
            dwell_us=nw.col("order") // 2,
            at_risk=nw.col("one").sum().over("group")
            - nw.col("one").cum_sum().over("group", order_by="order")
            + 1,
        )
        windowed = windowed.with_columns(log_factor=factor_expr(), emptied=emptied())
        windowed = windowed.with_columns(
            log_survival=nw.col("log_factor").cum_sum().over("group", order_by="order")
        )
        return windowed.drop("order", "one", "log_factor")

    def weighted(
        self, visits: nw.LazyFrame[Any], as_of: int, outcomes: Outcomes
    ) -> nw.LazyFrame[Any]:
        """Per-deal weights by grouping and one running count, joined back by deal.

        The count of deals followed at least a closed deal's age runs over every deal's
        follow-up and every closed deal's age, sorted together by one integer key: values
        descending, a follow-up before an age equal to it.
        """
        needed = ["opportunity_id", "step", "visit", "stage", "entered_us", "exited_us"]
        positions = {s: i for i, s in enumerate(outcomes.stages)}
        won = [positions[s] for s in outcomes.won]
        closed = [positions[s] for s in (*outcomes.won, *outcomes.lost)]
        open_positions = [positions[s] for s in outcomes.open]
        coded = self.stage_groups(visits.select(needed), {"group": "stage"}, outcomes)
        final = final_code(won, closed)
        deals = self.keep(  # read three times: computed once
            coded.with_columns(
                final=nw.when(nw.col("exited_us").is_null()).then(final).otherwise(nw.lit(0))
            )
            .group_by("opportunity_id")
            .agg(
                nw.col("entered_us").min().alias("opened"),
                nw.col("entered_us").max().alias("last"),
                nw.col("final").max(),
            )
        )
        total = int(deals.select(nw.len()).collect().item())
        follow = deals.select(
            "opportunity_id",
            key=(nw.col("opened") - as_of) * 2,  # -(as_of - opened), doubled: follow-ups even
            final=nw.lit(0, nw.Int64),
            one=nw.lit(1, nw.Int64),
        )
        ages = deals.filter(nw.col("final") != 0).select(
            "opportunity_id",
            key=(nw.col("opened") - nw.col("last")) * 2 + 1,  # ages odd: after equal follow-ups
            final=nw.col("final").cast(nw.Int64),
            one=nw.lit(0, nw.Int64),
        )
        both = nw.concat([follow, ages], how="vertical")
        counted = both.with_columns(followed=nw.col("one").cum_sum().over(order_by="key"))
        weights = self.keep(
            counted.filter(nw.col("final") != 0).select(
                "opportunity_id",
                won=nw.col("final") == 1,
                weight=nw.lit(float(total)) / nw.col("followed"),
            )
        )
        chosen = nw.col("group").is_in(open_positions) & ~nw.col("exited_us").is_null()
        picked = coded.filter(chosen).select(
            "opportunity_id",
            "group",
            first=nw.col("visit") == 1,
            dwell_us=nw.col("exited_us") - nw.col("entered_us"),
        )
        return picked.join(weights, on="opportunity_id", how="inner").select(
            "group", "won", "first", "dwell_us", "weight"
        )

    def dwell_stats(
        self, visits: nw.LazyFrame[Any], stages: Sequence[str]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """Quantiles by the engine's own aggregations; the KM median from the risk sets."""
        visits = visits.with_columns(censored_n=nw.col("censored").cast(nw.Int8))
        dwell = nw.col("dwell_us")  # in microseconds: days once aggregated
        aggs = [
            nw.len().alias("visits"),
            nw.col("censored_n").sum().alias("censored"),
            dwell.mean().alias("mean_days"),
            dwell.median().alias("median_days"),
            dwell.quantile(0.75, interpolation="linear").alias("p75_days"),
            dwell.quantile(0.9, interpolation="linear").alias("p90_days"),
        ]

        def in_days(row: dict[str, Any]) -> dict[str, Any]:
            for name in ("mean_days", "median_days", "p75_days", "p90_days"):
                row[name] = None if row[name] is None else row[name] / DAY_US
            return row

        stats = {}
        for row in collect_rows(visits.group_by("group", "final").agg(*aggs)):
            stage, outcome = stages[row.pop("group")], KINDS[row.pop("final")]
            stats[stage, outcome] = in_days(row)
        for row in collect_rows(visits.group_by("group").agg(*aggs)):
            stats[stages[row.pop("group")], "all"] = in_days(row)
        ranked = self.risk_sets(visits.select("group", "dwell_us", "censored"))
        for row in collect_rows(km_medians(ranked)):
            stats[stages[row["group"]], "all"]["km_median_days"] = row["km_median_days"]
        return stats

    def clock_medians(
        self, weighted: nw.LazyFrame[Any], outcomes: Outcomes
    ) -> dict[tuple[str, str], float]:
        """The first dwell whose running weight (an ordered window) reaches half the total."""
        part = ["group", "won"]
        ranked = weighted.with_columns(
            running=nw.col("weight").cum_sum().over(*part, order_by="dwell_us"),
            total=nw.col("weight").sum().over(*part),
        )
        rows = collect_rows(
            ranked.filter(nw.col("running") >= nw.col("total") * HALF_WEIGHT)
            .group_by(*part)
            .agg(nw.col("dwell_us").min())
        )
        return {
            (outcomes.stages[r["group"]], "won" if r["won"] else "lost"): r["dwell_us"] / DAY_US
            for r in rows
        }


def _quoted(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


class DuckDBKernel(LazyKernel):
    """DuckDB: the visits as one SQL query, kept inside DuckDB once computed."""

    def intervals(
        self, rows: nw.LazyFrame[Any], outcomes: Outcomes, as_of: int
    ) -> nw.LazyFrame[Any]:
        """One window per deal, shared by every neighbour read; one per (deal, stage)."""
        native = rows.to_native()
        if not hasattr(native, "query"):  # pragma: no cover - every DuckDB relation has it
            return super().intervals(rows, outcomes, as_of)
        kinds = " ".join(
            f"WHEN {_quoted(s)} THEN {KIND_CODE[k]}" for s, k in outcomes.kinds.items()
        )
        order = ", ".join(ORDER)
        names = "CASE {0} WHEN 1 THEN 'won' WHEN 2 THEN 'lost' ELSE 'open' END"
        sql = f"""
        WITH kept AS (SELECT * FROM canonical WHERE at_us <= {int(as_of)}),
        previous AS (
          SELECT *, lag(stage) OVER deal AS from_stage FROM kept
          WINDOW deal AS (PARTITION BY opportunity_id ORDER BY {order})),
        entries AS (
          SELECT *, CASE stage {kinds} ELSE 0 END AS kind_code FROM previous
          WHERE from_stage IS NULL OR from_stage <> stage),
        visits AS (
          SELECT *,
            lead("at") OVER deal AS exited_at,
            lead(at_us) OVER deal AS exited_us,
            lead(stage) OVER deal AS next_stage,
            CAST(row_number() OVER deal AS INTEGER) AS step,
            CAST(row_number() OVER (PARTITION BY opportunity_id, stage ORDER BY {order})
                 AS INTEGER) AS visit,
            last_value(kind_code) OVER (deal ROWS BETWEEN UNBOUNDED PRECEDING
                                        AND UNBOUNDED FOLLOWING) AS final
          FROM entries
          WINDOW deal AS (PARTITION BY opportunity_id ORDER BY {order}))
        SELECT opportunity_id, stage, {names.format("kind_code")} AS kind, step, visit,
          from_stage, "at" AS entered_at, exited_at, at_us AS entered_us, exited_us,
          CAST(CASE WHEN exited_us IS NOT NULL THEN (exited_us - at_us) / {DAY_US}
               WHEN kind_code = 0 THEN ({int(as_of)} - at_us) / {DAY_US} END AS DOUBLE)
            AS duration_days,
          next_stage, exited_us IS NULL AND kind_code = 0 AS censored,
          {names.format("final")} AS outcome, reason, amount, close_day
        FROM visits"""
        visits: nw.LazyFrame[Any] = nw.from_native(native.query("canonical", sql)).lazy()
        return visits

    def keep(self, frame: nw.LazyFrame[Any]) -> nw.LazyFrame[Any]:
        """Computed once, the rows held by DuckDB (a relation over them, still lazy)."""
        native = frame.to_native()
        if getattr(native, "type", "") == "MATERIALIZED_RELATION":
            return frame
        if hasattr(native, "materialize"):
            kept: nw.LazyFrame[Any] = nw.from_native(native.materialize()).lazy()
            return kept
        import duckdb  # noqa: PLC0415  # pragma: no cover - DuckDB before 2.0

        table = frame.collect(backend="pyarrow").to_native()  # pragma: no cover
        return nw.from_native(duckdb.from_arrow(table)).lazy()  # pragma: no cover


LAZY = LazyKernel()
DUCKDB = DuckDBKernel()
