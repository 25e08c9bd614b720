# ruff: noqa: S608 - SQL built from our own constants
"""Benchmark: intervals + time-in-stage summary + probability by stage.

Compares, in one run and on the same generated log, stagegate's frame path (Polars, and
DuckDB), hand-written Polars, pandas and DuckDB SQL computing the same outputs, pm4py's
closest built-ins (case durations and the performance DFG: mean/median time between
consecutive activities), and stagegate's pure-Python path on a smaller log.

Each contender runs in a fresh child process (timing excludes loading the log; memory is the
child's peak RSS), taking turns with the others for ``--rounds`` rounds; figures are
medians. pm4py is GPL: install it only for benchmark runs, from
benchmarks/requirements-pm4py.txt. It runs on a subsample (``--pm4py-deals``) and is
scaled linearly to the full size; the JSON says so.

With ``--spark``, stagegate also runs on a local PySpark session (``local[N]`` on every core,
session time zone UTC, ``spark.sql.shuffle.partitions`` twice the cores, the adaptive query
planner on), reading the same Parquet file as a cluster job would; its clock includes the
read, not the session's start. Its memory is the JVM's, which the child's peak RSS leaves out.

Usage:
    python benchmarks/analytics.py                 # 1,000,000 opportunities
    python benchmarks/analytics.py --deals 100000  # smaller run
    python benchmarks/analytics.py --spark --skip pm4py,pandas  # Spark beside Polars

The last line printed is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "src"))

START = datetime(2025, 1, 1, tzinfo=timezone.utc)
SPAN_DAYS = 365.0
AS_OF = START + timedelta(days=SPAN_DAYS)
DAY_US = 86_400_000_000


def _rss_mb() -> float:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def _peak_mb() -> float:
    """Peak RSS in MB (10**6 bytes, as :func:`_rss_mb`): Linux reports KiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def kinds() -> dict[str, str]:
    from stagegate.simulate import PipelineModel

    return PipelineModel().outcomes()


def generate(deals: int, seed: int, path: Path) -> None:
    import polars as pl

    from stagegate.simulate import simulate_columns

    cols = simulate_columns(deals, seed=seed, start=START, span_days=SPAN_DAYS)
    df = pl.DataFrame(
        {
            "opportunity_id": cols["opportunity_id"],
            "at": pl.Series(cols["at_us"], dtype=pl.Int64).cast(pl.Datetime("us", "UTC")),
            "seq": pl.Series(cols["seq"], dtype=pl.Int64),
            "stage": pl.Series(cols["stage"], dtype=pl.Categorical).cast(pl.String),
            "amount": pl.Series(cols["amount"], dtype=pl.Float64),
            "close_date": pl.Series(cols["close_day"], dtype=pl.Int32).cast(pl.Date),
            "reason": cols["reason"],
        }
    )
    df.write_parquet(path)


# -- contenders (each returns the three outputs; run inside a child) -------------------------


def run_stagegate(frame):
    from stagegate import analytics as an

    k = kinds()
    intervals = an.stage_intervals(frame, k, as_of=AS_OF)
    summary = an.time_in_stage(intervals, k, as_of=AS_OF)
    probabilities = an.stage_probabilities(intervals, k, as_of=AS_OF, draws=0)
    return intervals, summary, probabilities


def _finish(reached, moves, incidence):
    from stagegate.analytics.outcomes import Outcomes
    from stagegate.analytics.probability import Counts, estimate

    return estimate(Counts(reached, moves, {}, incidence), Outcomes.of(kinds()), draws=0)


def run_polars(df):
    import polars as pl

    k = kinds()
    rank = {s: i for i, s in enumerate(k)}
    code = {s: {"open": 0, "won": 1, "lost": 2}[v] for s, v in k.items()}
    as_of_us = int(AS_OF.timestamp() * 1_000_000)
    opp = "opportunity_id"
    rows = (
        df.lazy()
        .with_columns(
            at_us=pl.col("at").dt.epoch("us"),
            rank=pl.col("stage").replace_strict(rank, return_dtype=pl.Int64),
            kind=pl.col("stage").replace_strict(code, return_dtype=pl.Int8),
        )
        .filter(pl.col("at_us") <= as_of_us)
        .sort(opp, "at_us", "seq", "rank")
    )
    # sorted once: neighbours by plain shifts, group boundaries by comparing ids
    new_opp = pl.col(opp) != pl.col(opp).shift(1)
    entries = rows.filter(new_opp.fill_null(True) | (pl.col("stage") != pl.col("stage").shift(1)))
    last = (pl.col(opp) != pl.col(opp).shift(-1)).fill_null(True)
    first = (pl.col(opp) != pl.col(opp).shift(1)).fill_null(True)
    idx = pl.int_range(pl.len())
    iv = (
        entries.with_columns(
            exited_us=pl.when(~last).then(pl.col("at_us").shift(-1)),
            next_stage=pl.when(~last).then(pl.col("stage").shift(-1)),
            step=idx - pl.when(first).then(idx).forward_fill() + 1,
            final=pl.when(last).then(pl.col("kind")).backward_fill(),
        )
        .sort(opp, "stage", "step")
        .with_columns(
            visit=idx
            - pl.when(first | (pl.col("stage") != pl.col("stage").shift(1)).fill_null(True))
            .then(idx)
            .forward_fill()
            + 1
        )
        .with_columns(
            censored=pl.col("exited_us").is_null() & (pl.col("kind") == 0),
            duration_days=pl.when(pl.col("exited_us").is_not_null())
            .then((pl.col("exited_us") - pl.col("at_us")) / DAY_US)
            .when(pl.col("kind") == 0)
            .then((as_of_us - pl.col("at_us")) / DAY_US),
        )
        .collect()
    )
    visits = iv.lazy().filter((pl.col("kind") == 0) & pl.col("duration_days").is_not_null())
    d = pl.col("duration_days")
    aggs = [pl.len().alias("visits"), pl.col("censored").sum(), d.mean().alias("mean"),
            d.median().alias("median"),
            d.quantile(0.75, "linear").alias("p75"), d.quantile(0.9, "linear").alias("p90")]  # fmt: skip
    by_outcome = visits.group_by("stage", "final").agg(aggs)
    ranked = (
        visits.sort("stage", "duration_days", "censored")
        .with_columns(
            at_risk=pl.len().over("stage") - pl.int_range(pl.len()).over("stage"),
        )
        .with_columns(
            lf=pl.when(pl.col("censored"))
            .then(0.0)
            .when(pl.col("at_risk") <= 1)
            .then(-1e9)
            .otherwise((1 - 1 / pl.col("at_risk")).log()),
        )
        .with_columns(cum=pl.col("lf").cum_sum().over("stage"))
    )
    km = (
        ranked.filter(~pl.col("censored") & (pl.col("cum").exp() <= 0.5 + 1e-9))
        .group_by("stage")
        .agg(d.min().alias("km_median"))
    )
    overall = visits.group_by("stage").agg(aggs).join(km, on="stage", how="left")
    incidence = (
        ranked.filter(~pl.col("censored") & pl.col("next_stage").is_not_null())
        .with_columns(share=(pl.col("cum") - pl.col("lf")).exp() / pl.col("at_risk"))
        .group_by("stage", "next_stage")
        .agg(pl.col("share").sum(), pl.len().alias("n"))
    )
    reached = visits.filter(pl.col("visit") == 1).group_by("stage", "final").agg(pl.len())
    by_outcome, overall, incidence, reached = pl.collect_all(
        [by_outcome, overall, incidence, reached]
    )
    names = {0: "open", 1: "won", 2: "lost"}
    probabilities = _finish(
        {(r["stage"], names[r["final"]]): r["len"] for r in reached.iter_rows(named=True)},
        {(r["stage"], r["next_stage"]): r["n"] for r in incidence.iter_rows(named=True)},
        {(r["stage"], r["next_stage"]): r["share"] for r in incidence.iter_rows(named=True)},
    )
    return iv, (by_outcome, overall), probabilities


def run_pandas(df):
    import numpy as np

    k = kinds()
    rank = {s: i for i, s in enumerate(k)}
    code = {s: {"open": 0, "won": 1, "lost": 2}[v] for s, v in k.items()}
    as_of_us = int(AS_OF.timestamp() * 1_000_000)
    t = df.copy()
    t["at_us"] = (
        t["at"].astype("int64") // 1000 if t["at"].dt.unit == "ns" else t["at"].astype("int64")
    )
    t["rank"] = t["stage"].map(rank)
    t["kind"] = t["stage"].map(code)
    t = t[t["at_us"] <= as_of_us].sort_values(["opportunity_id", "at_us", "seq", "rank"])
    g = t.groupby("opportunity_id", sort=False)
    t = t[t["stage"].ne(g["stage"].shift(1))]
    g = t.groupby("opportunity_id", sort=False)
    t = t.assign(exited_us=g["at_us"].shift(-1), next_stage=g["stage"].shift(-1),
                 final=g["kind"].transform("last"),
                 visit=t.groupby(["opportunity_id", "stage"], sort=False).cumcount() + 1)  # fmt: skip
    exited = t["exited_us"].notna()
    t["censored"] = ~exited & (t["kind"] == 0)
    t["duration_days"] = np.where(exited, (t["exited_us"] - t["at_us"]) / DAY_US,
                                  np.where(t["kind"] == 0, (as_of_us - t["at_us"]) / DAY_US, np.nan))  # fmt: skip
    v = t[(t["kind"] == 0) & t["duration_days"].notna()]
    q = v.groupby(["stage", "final"])["duration_days"]
    by_outcome = (
        q.agg(["count", "mean", "median"])
        .join(q.quantile(0.75).rename("p75"))
        .join(q.quantile(0.9).rename("p90"))
    )
    qa = v.groupby("stage")["duration_days"]
    overall = qa.agg(["count", "mean", "median"]).join(qa.quantile(0.75).rename("p75"))
    s = v.sort_values(["stage", "duration_days", "censored"])
    n = s.groupby("stage")["duration_days"].transform("size") - s.groupby("stage").cumcount()
    lf = np.where(s["censored"], 0.0, np.where(n <= 1, -1e9, np.log(1 - 1 / np.maximum(n, 2))))
    s = s.assign(at_risk=n, lf=lf)
    s["cum"] = s.groupby("stage")["lf"].cumsum()
    km = (
        s[~s["censored"] & (np.exp(s["cum"]) <= 0.5 + 1e-9)].groupby("stage")["duration_days"].min()
    )
    overall = overall.join(km.rename("km_median"))
    ex = s[~s["censored"] & s["next_stage"].notna()].copy()
    ex["share"] = np.exp(ex["cum"] - ex["lf"]) / ex["at_risk"]
    inc = ex.groupby(["stage", "next_stage"])["share"].agg(["sum", "size"])
    reached = v[v["visit"] == 1].groupby(["stage", "final"]).size()
    names = {0: "open", 1: "won", 2: "lost"}
    probabilities = _finish(
        {(s_, names[f]): int(c) for (s_, f), c in reached.items()},
        {key: int(r["size"]) for key, r in inc.iterrows()},
        {key: float(r["sum"]) for key, r in inc.iterrows()},
    )
    return t, (by_outcome, overall), probabilities


def run_duckdb(df):
    import duckdb

    k = kinds()
    con = duckdb.connect()
    con.execute("SET TimeZone='UTC'")
    con.register("log", df.to_arrow())
    cases = " ".join(f"WHEN '{s}' THEN {i}" for i, s in enumerate(k))
    kind = " ".join(
        f"WHEN '{s}' THEN { {'open': 0, 'won': 1, 'lost': 2}[v] }" for s, v in k.items()
    )
    as_of_us = int(AS_OF.timestamp() * 1_000_000)
    con.execute(f"""
    CREATE TABLE iv AS
    WITH r AS (
      SELECT opportunity_id, epoch_us("at") AS at_us, seq, stage,
             CASE stage {cases} END AS rank, CASE stage {kind} END AS kind
      FROM log WHERE epoch_us("at") <= {as_of_us}),
    p AS (SELECT *, lag(stage) OVER w AS prev FROM r
          WINDOW w AS (PARTITION BY opportunity_id ORDER BY at_us, seq, rank)),
    e AS (SELECT * FROM p WHERE prev IS NULL OR prev <> stage),
    x AS (SELECT *, lead(at_us) OVER w AS exited_us, lead(stage) OVER w AS next_stage,
                 row_number() OVER (PARTITION BY opportunity_id, stage ORDER BY at_us, seq, rank) AS visit,
                 last_value(kind) OVER (PARTITION BY opportunity_id ORDER BY at_us, seq, rank
                     ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS final
          FROM e WINDOW w AS (PARTITION BY opportunity_id ORDER BY at_us, seq, rank))
    SELECT *, exited_us IS NULL AND kind = 0 AS censored,
           CASE WHEN exited_us IS NOT NULL THEN (exited_us - at_us) / {DAY_US}
                WHEN kind = 0 THEN ({as_of_us} - at_us) / {DAY_US} END AS duration_days
    FROM x""")
    v = "(SELECT * FROM iv WHERE kind = 0 AND duration_days IS NOT NULL)"
    aggs = ("count(*) n, sum(censored::int) c, avg(duration_days) m, median(duration_days) md, "
            "quantile_cont(duration_days, 0.75) q75, quantile_cont(duration_days, 0.9) q90")  # fmt: skip
    by_outcome = con.sql(f"SELECT stage, final, {aggs} FROM {v} GROUP BY ALL").fetchall()
    con.execute(f"""
    CREATE TABLE rk AS
    WITH a AS (SELECT stage, duration_days, censored, next_stage,
               count(*) OVER (PARTITION BY stage) - row_number() OVER s + 1 AS at_risk
               FROM {v} WINDOW s AS (PARTITION BY stage ORDER BY duration_days, censored))
    SELECT *, sum(lf) OVER (PARTITION BY stage ORDER BY duration_days, censored
                            ROWS UNBOUNDED PRECEDING) AS cum
    FROM (SELECT *, CASE WHEN censored THEN 0.0 WHEN at_risk <= 1 THEN -1e9
                         ELSE ln(1 - 1 / greatest(at_risk, 2)) END AS lf FROM a)""")
    overall = con.sql(
        f"SELECT stage, {aggs}, (SELECT min(duration_days) FROM rk WHERE rk.stage = t.stage "
        f"AND NOT censored AND exp(cum) <= 0.5 + 1e-9) AS km FROM {v} t GROUP BY ALL"
    ).fetchall()
    inc = con.sql(
        "SELECT stage, next_stage, sum(exp(cum - lf) / at_risk), count(*) FROM rk "
        "WHERE NOT censored AND next_stage IS NOT NULL GROUP BY ALL"
    ).fetchall()
    reached = con.sql(
        f"SELECT stage, final, count(*) FROM {v} WHERE visit = 1 GROUP BY ALL"
    ).fetchall()
    names = {0: "open", 1: "won", 2: "lost"}
    probabilities = _finish(
        {(s, names[f]): n for s, f, n in reached},
        {(s, t): n for s, t, _, n in inc},
        {(s, t): c for s, t, c, _ in inc},
    )
    return "iv", (by_outcome, overall), probabilities


def run_pm4py(log):
    import pm4py

    log = pm4py.format_dataframe(
        log, case_id="case", activity_key="activity", timestamp_key="timestamp"
    )
    durations = pm4py.get_all_case_durations(log)
    dfg, _start, _end = pm4py.discover_performance_dfg(log)
    return durations, dfg, None


def run_python(deals, seed):
    from stagegate import analytics as an
    from stagegate.simulate import simulate

    sim = simulate(deals, seed=seed, start=START, span_days=SPAN_DAYS)
    k = sim.model.outcomes()
    t0 = time.perf_counter()
    iv = an.stage_intervals(sim.events, k, as_of=AS_OF)
    an.time_in_stage(iv, k, as_of=AS_OF)
    an.stage_probabilities(iv, k, as_of=AS_OF, draws=0)
    return time.perf_counter() - t0


SPARK_SETTINGS = {
    "spark.sql.session.timeZone": "UTC",  # instants are read and written as UTC
    "spark.sql.adaptive.enabled": "true",
    "spark.ui.enabled": "false",
    "spark.driver.memory": "4g",
}
"""The settings of the local session (plus the master and the shuffle partitions)."""


def spark_session():
    from pyspark.sql import SparkSession

    cores = os.cpu_count() or 1
    builder = SparkSession.builder.master(f"local[{cores}]").appName("stagegate-benchmark")
    builder = builder.config("spark.sql.shuffle.partitions", str(2 * cores))
    for key, value in SPARK_SETTINGS.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def child(name: str, path: str, extra: list[str]) -> None:
    import polars as pl

    if name == "python":
        elapsed = run_python(int(extra[0]), int(extra[1]))
        print(json.dumps({"seconds": elapsed, "peak_mb": _peak_mb()}))
        return
    import duckdb
    import narwhals  # noqa: F401

    baseline = _rss_mb()
    df = pl.read_parquet(path)
    if name == "pm4py" and extra and int(extra[0]) < df["opportunity_id"].n_unique():
        ids = df["opportunity_id"].unique().sort().head(int(extra[0]))
        df = df.filter(pl.col("opportunity_id").is_in(ids.implode()))
    # the log's in-memory size: the memory it holds once loaded. Polars' estimated_size()
    # leaves out most of the 16-byte views of its string columns (6.6 MB for a column of
    # 4.3M mostly-null strings whose views alone take 69 MB), so it is reported beside.
    log_mb = _rss_mb() - baseline
    log_estimated_mb = df.estimated_size("mb")
    if name == "pandas":
        frame = df.to_pandas()
    elif name == "pm4py":  # pm4py reads pandas: converted before the clock, like pandas'
        frame = df.select(
            case=df["opportunity_id"], activity=df["stage"], timestamp=df["at"]
        ).to_pandas()
    elif name == "stagegate_spark":  # the canonical table read from Parquet, as on a cluster
        frame = spark_session().read.parquet(path)
    elif name == "stagegate_duckdb":
        import duckdb

        duckdb.execute("SET TimeZone='UTC'")
        frame = duckdb.from_arrow(df.to_arrow())
    else:
        frame = df
    loaded = _rss_mb()
    fn = {"stagegate_polars": run_stagegate, "stagegate_duckdb": run_stagegate,
          "stagegate_spark": run_stagegate,
          "polars": run_polars, "pandas": run_pandas, "duckdb": run_duckdb,
          "pm4py": run_pm4py}[name]  # fmt: skip
    t0 = time.perf_counter()
    fn(frame)
    elapsed = time.perf_counter() - t0
    print(json.dumps({"seconds": elapsed, "peak_mb": _peak_mb(), "baseline_mb": baseline,
                      "loaded_mb": loaded, "log_mb": log_mb, "log_estimated_mb": log_estimated_mb,
                      "rows": df.height}))  # fmt: skip


def spawn(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True,
                         text=True, check=False)  # fmt: skip
    if out.returncode:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def _median_run(runs: list[dict]) -> dict:
    """The run of median time (its own memory figures with it); an error if every run failed."""
    done = sorted((r for r in runs if "seconds" in r), key=lambda r: r["seconds"])
    if not done:
        return runs[-1]
    middle = dict(done[(len(done) - 1) // 2])
    middle["rounds_s"] = [round(r["seconds"], 3) for r in done]
    return middle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deals", type=int, default=1_000_000)
    parser.add_argument("--python-deals", type=int, default=100_000)
    parser.add_argument("--pm4py-deals", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3, help="turns per contender (median)")
    parser.add_argument("--skip", default="", help="comma-separated contenders to skip")
    parser.add_argument("--spark", action="store_true", help="also stagegate on local PySpark")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1] if len(args.child) > 1 else "", args.child[2:])
        return
    cache = Path(tempfile.gettempdir()) / f"stagegate-bench-{args.deals}-{args.seed}.parquet"
    if not cache.exists():
        t0 = time.perf_counter()
        generate(args.deals, args.seed, cache)
        print(f"generated {args.deals:,} opportunities in {time.perf_counter() - t0:.1f} s")
    # byte-compile stagegate as installing it would: pm4py and the data-frame libraries are
    # installed and compiled, and PYTHONDONTWRITEBYTECODE would make stagegate compile its
    # sources inside its clock on every run
    compileall.compile_dir(HERE.parent / "src" / "stagegate", quiet=1)
    skip = set(filter(None, args.skip.split(",")))
    names = [n for n in ("stagegate_polars", "polars", "pandas", "duckdb", "stagegate_duckdb",
                         "pm4py", *(["stagegate_spark"] if args.spark else []))
             if n not in skip]  # fmt: skip
    # contenders take turns, round after round, so a busy spell of a shared machine slows
    # them alike; each figure is the median of its rounds
    runs: dict[str, list[dict]] = {name: [] for name in names}
    for round_ in range(args.rounds):
        for name in names:
            extra = [str(args.pm4py_deals)] if name == "pm4py" else []
            runs[name].append(spawn([name, str(cache), *extra]))
            print(f"round {round_ + 1}", name, runs[name][-1])
    results = {name: _median_run(done) for name, done in runs.items()}
    if "python" not in skip:
        results["python"] = spawn(["python", "", str(args.python_deals), str(args.seed)])
        print("python", results["python"])
    sg = results.get("stagegate_polars", {})
    pm = results.get("pm4py", {})
    pm_scale = args.deals / min(args.pm4py_deals, args.deals)
    summary = {
        "deals": args.deals,
        "rows": sg.get("rows"),
        "rounds": args.rounds,
        "stagegate_polars_s": sg.get("seconds"),
        "stagegate_duckdb_s": results.get("stagegate_duckdb", {}).get("seconds"),
        "polars_s": results.get("polars", {}).get("seconds"),
        "stagegate_spark_s": results.get("stagegate_spark", {}).get("seconds"),
        "spark_settings": {
            **SPARK_SETTINGS,
            "master": f"local[{os.cpu_count()}]",
            "spark.sql.shuffle.partitions": 2 * (os.cpu_count() or 1),
        }
        if args.spark
        else None,
        "pandas_s": results.get("pandas", {}).get("seconds"),
        "duckdb_s": results.get("duckdb", {}).get("seconds"),
        "pm4py_s": None if "seconds" not in pm else pm["seconds"] * pm_scale,
        "pm4py_measured_s": pm.get("seconds"),
        "pm4py_deals": min(args.pm4py_deals, args.deals) if pm else None,
        "pm4py_scaled": bool(pm) and pm_scale != 1,
        "pm4py_note": "case durations + performance DFG on a subsample, scaled linearly"
        if pm_scale != 1
        else "case durations + performance DFG",
        "python_deals": args.python_deals,
        "python_s": results.get("python", {}).get("seconds"),
        "stagegate_peak_rss_mb": None if not sg else sg["peak_mb"] - sg["baseline_mb"],
        "stagegate_process_peak_rss_mb": sg.get("peak_mb"),
        "log_mb": sg.get("log_mb"),
        "log_estimated_mb": sg.get("log_estimated_mb"),
        "peak_rss_mb": {
            name: round(r["peak_mb"] - r["baseline_mb"])
            for name, r in results.items()
            if "peak_mb" in r and "baseline_mb" in r
        },
    }
    if summary["stagegate_polars_s"] and summary["polars_s"]:
        summary["stagegate_vs_polars"] = summary["stagegate_polars_s"] / summary["polars_s"]
    if summary["stagegate_duckdb_s"] and summary["duckdb_s"]:
        summary["stagegate_duckdb_vs_duckdb"] = summary["stagegate_duckdb_s"] / summary["duckdb_s"]
    if summary["stagegate_spark_s"] and summary["stagegate_polars_s"]:
        summary["spark_vs_polars"] = summary["stagegate_spark_s"] / summary["stagegate_polars_s"]
    if summary["stagegate_polars_s"] and summary["pm4py_s"]:
        summary["pm4py_vs_stagegate"] = summary["pm4py_s"] / summary["stagegate_polars_s"]
    if summary["stagegate_peak_rss_mb"] and summary["log_mb"]:
        summary["peak_over_log"] = summary["stagegate_peak_rss_mb"] / summary["log_mb"]
        summary["peak_over_log_estimate"] = (
            summary["stagegate_peak_rss_mb"] / summary["log_estimated_mb"]
        )
    errors = {k: v["error"] for k, v in results.items() if "error" in v}
    if errors:
        summary["errors"] = errors
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
