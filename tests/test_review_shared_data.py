"""On the Maven CRM sample: win rate, cycle time and stalled deals per sales agent and per
regional office equal an independent pandas computation."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from stagegate import analytics as an

pd = pytest.importorskip("pandas")
pytest.importorskip("narwhals")

DATA = Path(__file__).parents[1] / ".." / "shared" / "data" / "maven-crm"
pytestmark = [
    pytest.mark.shared_data,
    pytest.mark.skipif(not DATA.is_dir(), reason="../shared/data is not present"),
]
KINDS = {"prospecting": "open", "engaging": "open", "won": "won", "lost": "lost"}
AS_OF = datetime(2017, 12, 31, tzinfo=timezone.utc)
DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def maven() -> tuple[Any, Any]:
    """The deals joined to their teams, and the stage-history table with segment columns."""
    teams = pd.read_csv(DATA / "sales_teams.csv")
    deals = pd.read_csv(DATA / "sales_pipeline.csv").merge(teams, on="sales_agent", how="left")
    segments = {"owner": "sales_agent", "manager": "manager", "region": "regional_office"}
    engaged = deals.dropna(subset=["engage_date"])
    entered = pd.DataFrame(
        {
            "opportunity_id": engaged["opportunity_id"],
            "at": engaged["engage_date"],
            "stage": "engaging",
            "seq": 1,
            **{name: engaged[column] for name, column in segments.items()},
        }
    )
    closed = deals.dropna(subset=["close_date"])
    closing = pd.DataFrame(
        {
            "opportunity_id": closed["opportunity_id"],
            "at": closed["close_date"],
            "stage": closed["deal_stage"].str.lower(),
            "seq": 2,
            **{name: closed[column] for name, column in segments.items()},
        }
    )
    table = pd.concat([entered, closing], ignore_index=True)
    table["at"] = pd.to_datetime(table["at"]).dt.tz_localize("UTC")
    return deals, table


def expected_by(deals: Any, column: str) -> Any:
    """Per value of ``column``: closed, won, win rate, cycle mean and median, open, stalled."""
    closed = deals.dropna(subset=["close_date"]).copy()
    closed["days"] = (
        pd.to_datetime(closed["close_date"]) - pd.to_datetime(closed["engage_date"])
    ) / DAY
    closed["is_won"] = closed["deal_stage"] == "Won"
    won_days = closed.loc[closed["is_won"], "days"]
    limit = won_days.quantile(0.9)
    engaging = deals[deals["deal_stage"] == "Engaging"].copy()
    engaging["age"] = (pd.Timestamp("2017-12-31") - pd.to_datetime(engaging["engage_date"])) / DAY
    grouped = closed.groupby(column)
    return pd.DataFrame(
        {
            "closed": grouped.size(),
            "won": grouped["is_won"].sum(),
            "win_rate": grouped["is_won"].mean(),
            "mean_days": grouped["days"].mean(),
            "median_days": grouped["days"].median(),
            "won_median_days": closed[closed["is_won"]].groupby(column)["days"].median(),
            "open": engaging.groupby(column).size(),
            "stalled": engaging[engaging["age"] > limit].groupby(column).size(),
        }
    ).fillna({"open": 0, "stalled": 0})


@pytest.mark.parametrize(
    ("by", "column"), [("owner", "sales_agent"), ("region", "regional_office")]
)
def test_win_rate_cycle_time_and_stalled_by_segment_match_pandas(
    maven: Any, by: str, column: str
) -> None:
    deals, table = maven
    expected = expected_by(deals, column)
    rows = an.scorecard(table, KINDS, as_of=AS_OF, by=by)
    got = {row.segment[0]: row for row in rows}
    assert set(expected.index) == set(got)
    assert len(got) == (30 if by == "owner" else 3)  # 5 of the 35 agents have no deals
    for value, want in expected.iterrows():
        row = got[value]
        assert (int(want["closed"]), int(want["won"])) == (row.closed, row.won)
        assert pytest.approx(want["win_rate"]) == row.win_rate
        assert pytest.approx(want["mean_days"]) == row.cycle_mean_days
        assert pytest.approx(want["median_days"]) == row.cycle_median_days
        assert pytest.approx(want["won_median_days"]) == row.won_cycle_median_days
        assert (int(want["open"]), int(want["stalled"])) == (row.open_deals, row.stalled)
    assert sum(r.stalled for r in rows) == len(an.stalled(table, KINDS, as_of=AS_OF))


def test_the_rollup_counts_every_open_engaging_deal_once_per_level(maven: Any) -> None:
    deals, table = maven
    rows = an.rollup(
        table, KINDS, as_of=AS_OF, levels=("owner", "manager", "region"), estimator="empirical"
    )
    engaging = deals[deals["deal_stage"] == "Engaging"]
    for level, column in (("owner", "sales_agent"), ("manager", "manager")):
        counts = {r.segment[0]: r.deals for r in rows if r.level == level}
        assert engaging.groupby(column).size().to_dict() == counts
    [total] = [r for r in rows if r.level == "all"]
    assert total.deals == len(engaging) == 1589
