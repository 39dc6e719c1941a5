"""gradlake.analyze against ``gradlake analyze --format json`` on the same lake:
the binding must hand Python the CLI's results, row for row, as Arrow tables."""

import json
import math

import pyarrow as pa
import pytest

import gradlake


@pytest.fixture(scope="module")
def synth_lake(tmp_path_factory, gradlake_bin):
    import subprocess

    lake = tmp_path_factory.mktemp("analyze") / "lake"
    subprocess.run(
        [gradlake_bin, "synth", "--out", str(lake), "--steps", "6", "--samples", "4", "--draws", "3",
         "--params", "w:40x30,b:30", "--seed", "2"],
        check=True, capture_output=True,
    )
    return lake


def same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-12, abs=1e-300)
    return a == b


def test_analyze_returns_the_clis_summaries_and_tables(synth_lake, run_cli, tmp_path):
    cli = json.loads(run_cli("analyze", synth_lake, "--format", "json").stdout)
    report = tmp_path / "report"
    got = gradlake.analyze(synth_lake, report=report)
    assert list(got) == [a["name"] for a in cli["analyses"]]
    for want in cli["analyses"]:
        a = got[want["name"]]
        assert isinstance(a, gradlake.Analysis)
        assert (a.title, a.status) == (want["title"], want["status"])
        if want["status"] != "ran":
            assert a.reason == want["reason"] and a.summary is None
            continue
        assert isinstance(a.summary, pa.Table)
        rows = a.summary.to_pylist()
        assert len(rows) == len(want["summary"]) > 0
        for row, want_row in zip(rows, want["summary"]):
            for column, value in want_row.items():
                assert same(row[column], value), (want["name"], column, row[column], value)
        assert sorted(a.tables) == sorted(want["tables"])
        for name, table in a.tables.items():
            assert table.num_rows == len(want["tables"][name]), (want["name"], name)
    assert (report / "index.html").is_file()


def test_analyze_selects_and_checks_its_arguments(synth_lake):
    got = gradlake.analyze(synth_lake, only=["summary"], steps_per_pass=2)
    assert list(got) == ["summary"]
    with pytest.raises(ValueError, match=r'only: no analysis "nope" \(there are: summary'):
        gradlake.analyze(synth_lake, only=["nope"])
    with pytest.raises(ValueError, match="params: no analysis has a parameter"):
        gradlake.analyze(synth_lake, params={"bogus": 1})
    with pytest.raises(ValueError, match="xmin: top:2"):
        gradlake.analyze(synth_lake, only=["dimension_wise"], xmin=["top:2"])
    with pytest.raises(gradlake.GradlakeError, match="no gradients of run \"other\""):
        gradlake.analyze(synth_lake, run="other")
