"""The notebook tutorial (docs/notebook.ipynb), executed in a real Jupyter kernel.

Run on the Maven export in ../shared/data when it is there (its per-agent and per-office
figures are checked against pandas computed apart), and always on the simulated fallback a
clone without the data gets. Each run starts one kernel and takes about ten seconds.

``docs/notebook.md`` is the notebook rendered for the docs; regenerate it with
``.venv/bin/python tests/test_notebook.py`` after editing the notebook.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "docs" / "notebook.ipynb"
MARKDOWN = ROOT / "docs" / "notebook.md"
MAVEN = ROOT / ".." / "shared" / "data" / "maven-crm"
HEADER = (
    "<!-- Generated from docs/notebook.ipynb by tests/test_notebook.py: edit the notebook, then"
    " run .venv/bin/python tests/test_notebook.py -->\n\n"
)
PROBE = "import json\nprint('PROBE' + json.dumps({'agents': agents, 'MAVEN': str(MAVEN)}))"


def as_markdown(notebook: dict) -> str:
    """The notebook as Markdown: its text cells as they are, its code cells as Python blocks."""
    parts = []
    for cell in notebook["cells"]:
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        if cell["cell_type"] == "markdown":
            parts.append(source.strip())
        elif cell["cell_type"] == "code":
            parts.append(f"```python\n{source.strip()}\n```")
    return HEADER + "\n\n".join(parts) + "\n"


def execute(environment: dict[str, str]) -> tuple[object, dict]:
    """Run the notebook (plus a probe cell) in a fresh python3 kernel; return it and the probe."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(PROBE))
    saved = {key: os.environ.get(key) for key in environment}
    os.environ.update(environment)
    try:
        client = nbclient.NotebookClient(
            notebook,
            timeout=300,
            kernel_name="python3",
            resources={"metadata": {"path": str(NOTEBOOK.parent)}},
        )
        client.execute()
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    text = "".join(o.get("text", "") for o in notebook.cells[-1].outputs)
    return notebook, json.loads(text.split("PROBE", 1)[1])


def outputs(notebook: object) -> list[dict]:
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]


@pytest.fixture(scope="module")
def maven_run():
    if not (MAVEN / "sales_pipeline.csv").is_file():
        pytest.skip(f"{MAVEN} is absent (public test data, not shipped with the project)")
    return execute({"STAGEGATE_MAVEN": str(MAVEN)})


@pytest.fixture(scope="module")
def simulated_run(tmp_path_factory: pytest.TempPathFactory):
    return execute({"STAGEGATE_MAVEN": str(tmp_path_factory.mktemp("no-data"))})


class TestSimulatedFallback:
    def test_every_cell_runs_without_the_shared_data(self, simulated_run):
        notebook, probe = simulated_run
        assert [] == [o for o in outputs(notebook) if o["output_type"] == "error"]
        assert "None" == probe["MAVEN"]

    def test_tables_and_charts_display_as_html_and_svg(self, simulated_run):
        notebook, _ = simulated_run
        shown = [o for o in outputs(notebook) if o["output_type"] == "execute_result"]
        html = [o for o in shown if "text/html" in o["data"]]
        svg = [o for o in shown if "image/svg+xml" in o["data"]]
        assert len(html) >= 10
        assert len(svg) == 5  # funnel, time in stage, probabilities, forecast, Korean funnel
        assert any('data-chart="process"' in o["data"]["text/html"] for o in html)

    def test_the_simulated_agents_each_have_their_deals(self, simulated_run):
        _, probe = simulated_run
        assert 6 == len(probe["agents"])
        assert 1500 == sum(a["won"] + a["lost"] + a["open"] for a in probe["agents"])


@pytest.fixture(scope="module")
def expected():
    pd = pytest.importorskip("pandas")
    deals = pd.read_csv(MAVEN / "sales_pipeline.csv", parse_dates=["engage_date", "close_date"])
    deals = deals[deals["engage_date"].notna()]
    won = deals[deals["deal_stage"] == "Won"]
    cycle = (won["close_date"] - won["engage_date"]).dt.days
    limit = cycle.quantile(0.9)
    as_of = pd.Timestamp("2017-12-31 23:59")
    engaging = deals[deals["deal_stage"] == "Engaging"]
    age = (as_of - engaging["engage_date"]).dt.total_seconds() / 86400
    rows = {}
    for agent, group in deals.groupby("sales_agent"):
        n_won = int((group["deal_stage"] == "Won").sum())
        n_lost = int((group["deal_stage"] == "Lost").sum())
        days = cycle[won["sales_agent"] == agent]
        rows[agent] = {
            "won": n_won,
            "lost": n_lost,
            "open": int((group["deal_stage"] == "Engaging").sum()),
            "win rate": n_won / (n_won + n_lost),
            "median won cycle (days)": float(days.median()),
            "stalled": int((age[engaging["sales_agent"] == agent] > limit).sum()),
        }
    return rows


@pytest.mark.shared_data
class TestMaven:
    def test_every_cell_runs_on_the_export(self, maven_run):
        notebook, probe = maven_run
        assert [] == [o for o in outputs(notebook) if o["output_type"] == "error"]
        assert probe["MAVEN"].endswith("maven-crm")

    def test_per_agent_figures_equal_an_independent_pandas_computation(self, maven_run, expected):
        _, probe = maven_run
        got = {row["group"]: row for row in probe["agents"]}
        assert set(expected) == set(got)
        for agent, want in expected.items():
            for key, value in want.items():
                assert value == pytest.approx(got[agent][key]), (agent, key)

    def test_the_stalled_count_is_printed(self, maven_run, expected):
        notebook, _ = maven_run
        stalled = sum(row["stalled"] for row in expected.values())
        printed = "".join(o.get("text", "") for o in outputs(notebook))
        assert f"{stalled:,} of 1,589 open deals are stalled" in printed


def test_the_markdown_export_in_the_docs_is_current():
    notebook = json.loads(NOTEBOOK.read_text("utf-8"))
    assert MARKDOWN.read_text("utf-8") == as_markdown(notebook), (
        "docs/notebook.md is stale; regenerate it with: .venv/bin/python tests/test_notebook.py"
    )


def test_the_committed_notebook_carries_no_outputs():
    notebook = json.loads(NOTEBOOK.read_text("utf-8"))
    code = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert code
    assert all(c["outputs"] == [] and c["execution_count"] is None for c in code)


if __name__ == "__main__":
    MARKDOWN.write_text(as_markdown(json.loads(NOTEBOOK.read_text("utf-8"))), "utf-8")
    sys.stdout.write(f"wrote {MARKDOWN}\n")
