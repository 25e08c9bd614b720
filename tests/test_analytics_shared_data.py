"""Integration on public datasets: stagegate matches a straightforward pandas computation."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from stagegate import analytics as an

pd = pytest.importorskip("pandas")
pytest.importorskip("narwhals")

DATA = Path(__file__).parents[1] / ".." / "shared" / "data"
pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is not present"),
]
DAY = pd.Timedelta(days=1)


# -- Maven CRM: engage -> close, one row per deal --------------------------------------------

MAVEN_KINDS = {"prospecting": "open", "engaging": "open", "won": "won", "lost": "lost"}
MAVEN_AS_OF = datetime(2017, 12, 31, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def maven() -> tuple[Any, Any]:
    deals = pd.read_csv(DATA / "maven-crm" / "sales_pipeline.csv")
    engage = deals.dropna(subset=["engage_date"])
    entered = pd.DataFrame(
        {
            "opportunity_id": engage["opportunity_id"],
            "at": engage["engage_date"],
            "stage": "engaging",
            "seq": 1,
        }
    )
    closed = deals.dropna(subset=["close_date"])
    closing = pd.DataFrame(
        {
            "opportunity_id": closed["opportunity_id"],
            "at": closed["close_date"],
            "stage": closed["deal_stage"].str.lower(),
            "seq": 2,
        }
    )
    table = pd.concat([entered, closing], ignore_index=True)
    table["at"] = pd.to_datetime(table["at"]).dt.tz_localize("UTC")
    return deals, table


def test_maven_time_in_engaging_matches_pandas(maven: Any) -> None:
    deals, table = maven
    engaged = deals.dropna(subset=["engage_date"]).copy()
    engage = pd.to_datetime(engaged["engage_date"])
    close = pd.to_datetime(engaged["close_date"]).fillna(pd.Timestamp("2017-12-31"))
    engaged["days"] = (close - engage) / DAY
    expected = engaged.groupby("deal_stage")["days"].agg(["count", "mean", "median"])
    result = an.time_in_stage(table, MAVEN_KINDS, as_of=MAVEN_AS_OF)
    got = result[result["stage"] == "engaging"].set_index("outcome")
    for label, outcome in (("Won", "won"), ("Lost", "lost"), ("Engaging", "open")):
        assert got.loc[outcome, "visits"] == expected.loc[label, "count"]
        assert got.loc[outcome, "mean_days"] == pytest.approx(expected.loc[label, "mean"])
        assert got.loc[outcome, "median_days"] == pytest.approx(expected.loc[label, "median"])
    assert got.loc["open", "censored"] == expected.loc["Engaging", "count"]


def test_maven_win_rate_and_cycle_times_match_pandas(maven: Any) -> None:
    deals, table = maven
    closed = deals.dropna(subset=["close_date"])
    won = (closed["deal_stage"] == "Won").sum()
    probabilities = an.stage_probabilities(table, MAVEN_KINDS, as_of=MAVEN_AS_OF, draws=0)
    engaging = probabilities.set_index("stage").loc["engaging"]
    assert engaging["closed"] == len(closed) == 6711
    assert engaging["empirical"] == pytest.approx(won / len(closed))
    cycles = an.cycle_times(table, MAVEN_KINDS, as_of=MAVEN_AS_OF)
    days = (pd.to_datetime(closed["close_date"]) - pd.to_datetime(closed["engage_date"])) / DAY
    summary = cycles.summary.set_index("outcome")
    assert summary.loc["closed", "deals"] == len(closed)
    assert summary.loc["closed", "mean_days"] == pytest.approx(days.mean())
    assert summary.loc["won", "median_days"] == pytest.approx(
        days[closed["deal_stage"] == "Won"].median()
    )


def test_maven_python_path_agrees_with_the_pandas_path(maven: Any) -> None:
    _, table = maven
    rows = table.to_dict("records")
    for r in rows:
        r["at"] = r["at"].to_pydatetime()
    py = an.time_in_stage(rows, MAVEN_KINDS, as_of=MAVEN_AS_OF)
    frame = an.time_in_stage(table, MAVEN_KINDS, as_of=MAVEN_AS_OF)
    assert [r.mean_days for r in py] == pytest.approx(list(frame["mean_days"]))
    assert [r.km_median_days for r in py if r.outcome == "all"] == pytest.approx(
        list(frame[frame["outcome"] == "all"]["km_median_days"])
    )


def test_maven_stalled_deals_are_old_engaging_deals(maven: Any) -> None:
    deals, table = maven
    result = an.stalled(table, MAVEN_KINDS, as_of=MAVEN_AS_OF, learned="p90")
    won = deals[deals["deal_stage"] == "Won"]
    limit = (
        (pd.to_datetime(won["close_date"]) - pd.to_datetime(won["engage_date"])) / DAY
    ).quantile(0.9)
    open_deals = deals[deals["deal_stage"] == "Engaging"]
    age = (pd.Timestamp("2017-12-31") - pd.to_datetime(open_deals["engage_date"])) / DAY
    assert len(result) == (age > limit).sum()
    assert result["limit_days"].iloc[0] == pytest.approx(limit)


# -- Pipedrive-shaped change log: skips, backward moves, id reuse, naive instants ------------

PIPEDRIVE_KINDS = {**{f"s{i}": "open" for i in range(1, 10)}, "won": "won", "lost": "lost"}


@pytest.fixture(scope="module")
def pipedrive() -> Any:
    changes = pd.read_csv(DATA / "pipedrive-deal-changes" / "deal_changes.csv")
    stage = changes[changes["changed_field_key"] == "stage_id"]
    lost = changes[changes["changed_field_key"] == "lost_reason"]
    table = pd.concat(
        [
            pd.DataFrame(
                {
                    "opportunity_id": stage["deal_id"].astype(str),
                    "at": stage["change_time"],
                    "stage": "s" + stage["new_value"],
                    "reason": None,
                }
            ),
            pd.DataFrame(
                {
                    "opportunity_id": lost["deal_id"].astype(str),
                    "at": lost["change_time"],
                    "stage": "lost",
                    "reason": lost["new_value"],
                }
            ),
        ],
        ignore_index=True,
    )
    table["at"] = pd.to_datetime(table["at"])  # naive: recorded in UTC
    return table


PIPEDRIVE_AS_OF = datetime(2025, 4, 1, tzinfo=timezone.utc)


def _pandas_visits(table: Any) -> Any:
    order = {s: i for i, s in enumerate(PIPEDRIVE_KINDS)}
    t = table.assign(rank=table["stage"].map(order)).sort_values(["opportunity_id", "at", "rank"])
    t = t[t["stage"] != t.groupby("opportunity_id")["stage"].shift(1)]
    t["exit"] = t.groupby("opportunity_id")["at"].shift(-1)
    t["days"] = (t["exit"].fillna(pd.Timestamp("2025-04-01")) - t["at"]) / DAY
    final = t.groupby("opportunity_id")["stage"].transform("last")
    t["outcome"] = final.map(lambda s: "lost" if s == "lost" else "open")
    return t


def test_pipedrive_time_in_stage_and_reach_match_pandas(pipedrive: Any) -> None:
    visits = _pandas_visits(pipedrive)
    open_visits = visits[visits["stage"] != "lost"]
    expected = open_visits.groupby("stage")["days"].agg(["count", "mean"])
    result = an.time_in_stage(pipedrive, PIPEDRIVE_KINDS, as_of=PIPEDRIVE_AS_OF, assume_zone="UTC")
    got = result[result["outcome"] == "all"].set_index("stage")
    for stage, row in expected.iterrows():
        assert got.loc[stage, "visits"] == row["count"]
        assert got.loc[stage, "mean_days"] == pytest.approx(row["mean"])
    f = an.funnel(pipedrive, PIPEDRIVE_KINDS, as_of=PIPEDRIVE_AS_OF, assume_zone="UTC")
    reached = open_visits.groupby("stage")["opportunity_id"].nunique()
    got_reached = f.stages.set_index("stage")["reached"]
    for stage, n in reached.items():
        assert got_reached[stage] == n
    losses = visits[visits["stage"] == "lost"]
    assert f.losses["deals"].sum() == len(losses)


def test_pipedrive_without_wins_has_zero_empirical_probability(pipedrive: Any) -> None:
    result = an.stage_probabilities(
        pipedrive, PIPEDRIVE_KINDS, as_of=PIPEDRIVE_AS_OF, assume_zone="UTC", draws=0
    )
    closed = result[result["closed"] > 0]
    assert (closed["empirical"] == 0).all()
    assert (closed["markov"].fillna(0) == 0).all()
