"""Leaderboard rendering from synthetic, schema-valid result rows (no training)."""

from __future__ import annotations

import base64
import io
import json
import math
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import polars as pl
import pytest
from PIL import Image

from idbench.errors import IdbenchError
from idbench.leaderboard import load_results, render, render_results, table, to_csv, to_latex
from idbench.leaderboard import common_threshold, comparison, format_table, plots
from idbench.leaderboard.page import to_html
from idbench.leaderboard.tables import (fmt_interval, fmt_num, fmt_options, fmt_ratio, fmt_wall,
                                        groups, interval_caption, to_markdown)
from idbench.schema import SCHEMA_VERSION, MeasurementRow, RunRow
from idbench.estimate import MIN_CI_UNITS, estimate, pooled
from idbench.estimate import ratio as curve_ratio
from idbench.search import Probe, curve_of, decide
from idbench.frames import polars_schema

D_FC, D_LENET = 20_000, 5_000
# (model, projection) -> what the search found; given in an order that is not the sorted one
CELLS = {
    ("lenet", "fastfood"): dict(d_int=None, d_lo=None, d_hi=None, censored=True, ci=(None, None)),
    ("fc[depth=1,width=64]", "sparse"): dict(d_int=281.0, d_lo=250, d_hi=300, censored=False,
                                             ci=(270.4, float("inf"))),
    ("lenet", "dense"): dict(d_int=64, d_lo=None, d_hi=64, censored=False, ci=(50.2, 64.0)),
    ("fc[depth=1,width=64]", "dense"): dict(d_int=187.4, d_lo=150, d_hi=200, censored=False,
                                            ci=(161.7, 238.2)),
}
BASELINE = 0.95
THRESHOLD_SCORE = 0.9 * BASELINE


def _score(d: int, d_int: int | None, seed: int) -> float:
    """A score curve crossing the threshold at d_int (never, when censored)."""
    level = 0.5 * THRESHOLD_SCORE if d_int is None else THRESHOLD_SCORE * min(1.05, d / d_int)
    return round(level + 0.004 * (seed - 1), 6)


def _rows():
    measurements, runs = [], []
    for i, ((model, projection), found) in enumerate(CELLS.items()):
        cell = f"cell{i}"
        D = D_LENET if model == "lenet" else D_FC
        grid = [16, 32, 64, 150, 200, 250, 300, 600, 1000]
        probes = []
        for d in grid:
            scores = [_score(d, found["d_int"], s) for s in range(3)]
            mean = sum(scores) / 3
            probes.append({"d": d, "mean": mean, "std": 0.004, "scores": scores,
                           "passed": mean >= THRESHOLD_SCORE})
            for seed, score in enumerate(scores):
                runs.append(_run(cell, model, D, projection, d, seed, score, "probe"))
        for seed in range(3):
            runs.append(_run(cell, model, D, None, None, seed, BASELINE, "baseline"))
        measurements.append(MeasurementRow(
            cell=cell, suite="tiny", suite_version="1", model=model, dataset="digits", D=D,
            metric="accuracy", projection=projection, projection_options="{}",
            normalisation="unit-column", method="fpd", method_options="{}", compartments="1",
            seeds=3, epochs=2.0, steps_budget=None, batch_size=64, optimizer="sgd",
            baseline_kind="local", threshold=0.9, search="grid", d_min=16, d_max=1000,
            resolution=0.1, grid=json.dumps(grid), tune_trials=4, tune_seeds=2, tune_at="ref:128",
            lr_baseline=0.1, lr_subspace=0.5, lr_scaling="inverse-d", schedule="cosine",
            warmup=0.05, baseline_mean=BASELINE,
            baseline_std=0.0123,
            threshold_score=THRESHOLD_SCORE, d_int=found["d_int"], d_lo=found["d_lo"],
            d_hi=found["d_hi"], ci_low=found["ci"][0], ci_high=found["ci"][1],
            censored=found["censored"], probes=json.dumps(probes), n_runs=3 * len(grid) + 3,
            wall_s=192.0 + i, device="cpu", versions=json.dumps({"idbench": "0.1.0", "torch": "2.5"}),
            git_rev="abc123", timestamp=f"2025-01-0{i + 1}T12:00:00+00:00",
        ))
    return measurements, runs


def _run(cell, model, D, projection, d, seed, score, role) -> RunRow:
    return RunRow(
        run_key=f"{cell}-{role}-{d}-{seed}", cell=cell, suite="tiny", role=role, model=model,
        dataset="digits", D=D, metric="accuracy", projection=projection, projection_options="{}",
        normalisation=None if d is None else "unit-column", method="fpd", method_options="{}",
        compartments=None if d is None else "1", n_compartments=None if d is None else 1, d=d,
        d_total=d, seed=seed, lr=0.1, optimizer="sgd", momentum=0.9, weight_decay=0.0,
        batch_size=64, epochs=2.0, steps_budget=None, schedule="cosine", warmup=0.05,
        eval_every=None,
        patience=None, val_fraction=0.1, split_seed=0, val_score=score, val_loss=0.3,
        test_score=score, train_loss=0.2, diverged=False, stopped_early=False, steps=100,
        wall_s=1.0, grad_cosine=None, history="[]", device="cpu", versions="{}", git_rev="abc123",
        timestamp="2025-01-01T00:00:00+00:00",
    )


def _frame(rows, model) -> pl.DataFrame:
    return pl.DataFrame([r.model_dump() for r in rows], schema=polars_schema(model))


@pytest.fixture(scope="module")
def frames() -> tuple[pl.DataFrame, pl.DataFrame]:
    measurements, runs = _rows()
    return _frame(measurements, MeasurementRow), _frame(runs, RunRow)


@pytest.fixture(scope="module")
def rendered(frames, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("lb") / "leaderboards" / "tiny"
    return render(*frames, out, provenance={"suite_hash": "feedbeef"})


def _md_rows(markdown: str) -> list[list[str]]:
    lines = [ln for ln in markdown.splitlines() if ln.startswith("|")]
    return [[c.strip() for c in ln.strip("|").split(" | ")] for ln in lines[2:]]


# table contents


def test_markdown_has_one_row_per_cell_with_d_int_bracket_and_ci(frames):
    md = to_markdown(table(*frames))
    header = [c.strip() for c in md.splitlines()[0].strip("|").split(" | ")]
    rows = _md_rows(md)
    assert len(rows) == len(CELLS)
    col = {name: header.index(name) for name in ("Model", "Projection", "d_int90", "Bracket",
                                                  "95% CI", "D/d_int90", "Wall time")}
    got = {(r[col["Model"]], r[col["Projection"]]): r for r in rows}
    assert set(got) == set(CELLS)
    expect = {  # d_int, bracket, CI, compression
        ("fc[depth=1,width=64]", "dense"): ("187", "[150, 200]", "[162, 238]", "107"),
        ("fc[depth=1,width=64]", "sparse"): ("281", "[250, 300]", "[270, ∞)", "71.2"),
        ("lenet", "dense"): ("≤ 64", "(0, 64]", "[50, 64]", "78.1"),
        ("lenet", "fastfood"): ("> 1000", "(1000, ∞)", "—", "< 5.00"),
    }
    for key, (d_int, bracket, ci, ratio) in expect.items():
        row = got[key]
        assert (row[col["d_int90"]], row[col["Bracket"]], row[col["95% CI"]],
                row[col["D/d_int90"]]) == (d_int, bracket, ci, ratio), key
    assert "0.950 ± 0.012" in md
    assert got[("fc[depth=1,width=64]", "dense")][col["Wall time"]].endswith("s")
    assert "accuracy" in md and "0.9 × baseline" in md  # metric and threshold are stated


def test_rows_are_sorted_with_projections_of_a_cell_adjacent(frames):
    df = table(*frames)
    assert df.select("model", "projection").rows() == [
        ("fc[depth=1,width=64]", "dense"), ("fc[depth=1,width=64]", "sparse"),
        ("lenet", "dense"), ("lenet", "fastfood"),
    ]
    models = [r[0] for r in _md_rows(to_markdown(df))]
    assert models == ["fc[depth=1,width=64]"] * 2 + ["lenet"] * 2


def test_remeasured_cell_keeps_the_latest_row(frames):
    measurements, runs = frames
    old = measurements.filter(pl.col("cell") == "cell1").with_columns(
        d_int=pl.lit(999.0), timestamp=pl.lit("2000-01-01T00:00:00+00:00"))
    df = table(pl.concat([old, measurements]), runs)
    assert df.height == len(CELLS) and 999 not in df["d_int"].to_list()


def test_compartments_count_in_the_compression(frames):
    measurements, runs = frames
    split = measurements.with_columns(compartments=pl.lit("4"))
    runs = runs.with_columns(d_total=pl.col("d") * 4, n_compartments=pl.lit(4))
    df = table(split, runs).filter(pl.col("projection") == "dense", pl.col("model") == "lenet")
    assert df["d_int_total"].item() == 256 and df["compression"].item() == pytest.approx(D_LENET / 256)
    assert "Compartments" in to_markdown(table(split, runs))


def test_csv_parses_back_to_the_same_values(frames):
    df = table(*frames).drop("probes")
    back = pl.read_csv(io.StringIO(to_csv(table(*frames))), schema=df.schema)
    assert back.equals(df)


def test_latex_table(frames):
    tex = to_latex(table(*frames))
    assert "\\begin{tabular}" in tex and "\\end{tabular}" in tex and "\\toprule" in tex
    assert "d\\_int90" in tex and "$>$ 1000" in tex and "$\\pm$" in tex
    body = tex.split("\\midrule", 1)[1].split("\\bottomrule")[0]
    assert body.count("\\\\") == len(CELLS) and body.count("\\midrule") == 1  # one group break


def test_wall_time_is_human():
    assert [fmt_wall(s) for s in (0.42, 12.4, 192, 7500, 90000)] == [
        "0.4s", "12s", "3m 12s", "2h 05m", "1d 01h"]


# rendered files


def test_render_writes_every_file(rendered, frames):
    names = {"leaderboard.md", "leaderboard.html", "leaderboard.csv", "leaderboard.tex",
             "dint_vs_d.png", "dint_vs_d.svg", "dint_by_projection.png",
             "dint_by_projection.svg", "dint_ratio_to_dense.png", "dint_ratio_to_dense.svg",
             "provenance.json"}
    assert set(rendered) == names
    folder = rendered["leaderboard.md"].parent
    assert {p.name for p in folder.iterdir()} == names  # no temporary leftovers
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]
    info = json.loads(rendered["provenance.json"].read_text())
    assert info["suite"] == "tiny" and info["suite_hash"] == "feedbeef"
    assert info["measured_by"] == "abc123" and info["device"] == "cpu"
    assert info["trained_by"] == {"abc123": frames[1]["run_key"].n_unique()}
    assert info["versions"]["torch"] == "2.5" and info["date"] == "2025-01-04T12:00:00+00:00"


def test_plot_files_are_valid_images_of_the_expected_size(rendered):
    sizes = {"dint_vs_d": plots.accuracy_figsize(2),  # two cells (fc, lenet) of two projections
             "dint_by_projection": plots.dint_figsize(2, 3)}  # three projections in all
    for name, (w, h) in sizes.items():
        with Image.open(rendered[f"{name}.png"]) as image:
            image.verify()
        with Image.open(rendered[f"{name}.png"]) as image:
            assert image.format == "PNG"
            assert image.size == (round(w * plots.DPI), round(h * plots.DPI))
        root = ET.parse(rendered[f"{name}.svg"]).getroot()
        assert root.tag.endswith("svg")
        assert float(root.get("width").removesuffix("pt")) == pytest.approx(w * 72)


def test_html_is_self_contained(rendered):
    html = rendered["leaderboard.html"].read_text()
    assert "<script" not in html.lower() and "http:" not in html and "https:" not in html
    assert "@import" not in html and "url(" not in html
    assert html.count('<img alt=') == 3
    for data in re.findall(r'src="data:image/png;base64,([^"]+)"', html):
        with Image.open(io.BytesIO(base64.b64decode(data))) as image:
            image.verify()
    assert "feedbeef" in html and "abc123" in html and "&gt; 1000" in html


def test_html_opens_in_headless_chromium(rendered, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium); cannot open the page")
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
         "--v=0", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=2000",
         "--dump-dom", rendered["leaderboard.html"].resolve().as_uri()],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    # page errors, blocked loads (the page's CSP forbids any) and script errors all log CONSOLE
    console = [ln for ln in done.stderr.splitlines() if ":CONSOLE" in ln]
    assert console == []
    dom = done.stdout
    assert '<table id="leaderboard">' in dom
    body = dom.split("</thead>", 1)[1].split("</table>", 1)[0]
    assert body.count("<tr>") == len(CELLS) and body.count("<tbody>") == 2


def test_chromium_check_catches_a_page_that_loads_from_outside(rendered, tmp_path):
    """The console check above can fail: a page that tries to load a stylesheet logs it."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("chromium is not installed (apt-get install chromium); cannot open the page")
    bad = tmp_path / "bad.html"
    bad.write_text(rendered["leaderboard.html"].read_text().replace(
        "</head>", '<link rel="stylesheet" href="https://example.org/x.css"></head>'))
    done = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr",
         "--v=0", f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", bad.as_uri()],
        capture_output=True, text=True, timeout=60,
    )
    assert any(":CONSOLE" in ln for ln in done.stderr.splitlines())


# stored results


def _store(frames, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    frames[0].write_parquet(folder / "measurements.parquet")
    frames[1].write_parquet(folder / "runs.parquet")
    return folder


def test_rendering_from_stored_parquet_gives_the_same_table(frames, rendered, tmp_path):
    results = _store(frames, tmp_path / "leaderboards" / "tiny")
    measurements, runs = load_results(results)
    assert measurements.equals(frames[0]) and runs.equals(frames[1])
    first = render_results(results, formats=("md",), plots=False,
                           provenance={"suite_hash": "feedbeef"})
    md = first["leaderboard.md"].read_text()
    second = render_results(results / "measurements.parquet", tmp_path / "again", formats=("md",),
                            plots=False, provenance={"suite_hash": "feedbeef"})
    assert second["leaderboard.md"].read_text() == md
    assert rendered["leaderboard.md"].read_text() == md  # same as from the frames in memory
    for found in CELLS.values():
        if found["d_int"] is not None and found["d_lo"] is not None:
            assert f"| {round(found['d_int'])} |" in md


def test_plots_are_deterministic(frames, rendered, tmp_path):
    again = render(*frames, tmp_path / "again", formats=(), provenance={"suite_hash": "feedbeef"})
    for name in ("dint_vs_d.svg", "dint_by_projection.svg", "dint_vs_d.png"):
        assert again[name].read_bytes() == rendered[name].read_bytes(), name


def test_other_schema_version_is_refused_and_nothing_is_written(frames, tmp_path):
    results = _store(
        (frames[0].with_columns(schema_version=pl.lit(SCHEMA_VERSION + 1, pl.Int64)), frames[1]),
        tmp_path / "results")
    out = tmp_path / "leaderboards" / "tiny"
    with pytest.raises(IdbenchError, match=f"schema version {SCHEMA_VERSION + 1}.*re-run"):
        render_results(results, out)
    assert not out.exists() and not (tmp_path / "leaderboards").exists()
    before = sorted(p.name for p in results.iterdir())
    with pytest.raises(IdbenchError, match="schema version"):
        render_results(results)  # into the results folder itself
    assert sorted(p.name for p in results.iterdir()) == before


def test_missing_results_are_a_clear_error(tmp_path):
    with pytest.raises(IdbenchError, match="measurements.parquet"):
        load_results(tmp_path)
    with pytest.raises(IdbenchError, match="does not exist"):
        load_results(tmp_path / "nope")
    (tmp_path / "measurements.parquet").write_text("not parquet")
    with pytest.raises(IdbenchError, match="cannot read"):
        load_results(tmp_path)


def test_failure_while_plotting_leaves_no_partial_files(frames, tmp_path, monkeypatch):
    out = _store(frames, tmp_path / "leaderboards" / "tiny")
    (out / "leaderboard.md").write_text("old table\n")
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(df):
        raise RuntimeError("plotting failed")

    monkeypatch.setattr(plots, "dint_by_projection", broken)  # the second plot: files exist by then
    with pytest.raises(RuntimeError, match="plotting failed"):
        render(*frames, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in out.parent.iterdir()) == ["tiny"]  # temp folder removed


def test_empty_results_and_bad_format_are_refused(frames, tmp_path):
    with pytest.raises(IdbenchError, match="no measured cells"):
        render(frames[0].clear(), frames[1], tmp_path / "x")
    with pytest.raises(IdbenchError, match="format"):
        render(*frames, tmp_path / "x", formats=("pdf",))
    assert not (tmp_path / "x").exists()


def test_html_escapes_names(frames):
    measurements = frames[0].with_columns(model=pl.lit("<b>&x</b>"))
    html = to_html(table(measurements, frames[1]), {"suite": "tiny"})
    assert "<b>&x</b>" not in html and "&lt;b&gt;&amp;x&lt;/b&gt;" in html


# one statistic: the estimate and its interval


COMMITTED = sorted((Path(__file__).parent.parent / "leaderboards").glob("*/measurements.parquet"))


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.parent.name)
def test_committed_leaderboards_interval_contains_the_estimate(path):
    """Every row of every committed leaderboard: its estimate and interval are those of its stored
    probes and baseline scores (the statistic is a function of them), the interval contains the
    estimate, and the stored bracket is the probes'."""
    rows = pl.read_parquet(path).to_dicts()
    assert rows
    for row in rows:
        if (row.get("draws") or 1) > 1:  # pooled over independent draws (idbench.draws)
            draws = json.loads(row["draw_d_ints"])
            if row["censored"]:
                assert row["d_int"] is None and None in draws
                continue
            assert (row["d_int"], row["ci_low"], row["ci_high"]) == pytest.approx(pooled(draws))
            assert row["ci_low"] <= row["d_int"] <= row["ci_high"]
            assert min(draws) <= row["d_int"] <= max(draws)
            continue
        probes = [Probe(p["d"], tuple(p["scores"]), p["passed"]) for p in json.loads(row["probes"])]
        baseline = json.loads(row["baseline_scores"]) if row["baseline_scores"] else None
        found = estimate(curve_of(probes, row["threshold_score"], baseline))
        assert decide(probes) == (row["d_hi"], row["d_lo"])  # the stored bracket
        assert (found.d_int, found.ci_low, found.ci_high) == (row["d_int"], row["ci_low"],
                                                               row["ci_high"])
        if row["censored"]:
            assert found.d_int is None
            continue
        assert min(p.d for p in probes) <= found.d_int <= max(p.d for p in probes)
        if row["seeds"] < MIN_CI_UNITS:
            assert (found.ci_low, found.ci_high) == (None, None)
        else:
            assert found.ci_low <= found.d_int <= found.ci_high
    # read as idbench reads them, rows written while d_int was the smallest passing probe carry
    # the recomputed estimate and interval, not the old integer
    loaded, _ = load_results(path.parent)
    for row in loaded.to_dicts():
        if not row["censored"]:
            assert row["ci_low"] is None or row["ci_low"] <= row["d_int"] <= row["ci_high"]


def test_no_interval_below_three_seeds_is_shown_as_na(frames):
    measurements, runs = frames
    two = measurements.with_columns(seeds=pl.lit(2), ci_low=None, ci_high=None)
    md = to_markdown(table(two, runs))
    header = [c.strip() for c in md.splitlines()[0].strip("|").split(" | ")]
    ci = [r[header.index("95% CI")] for r in _md_rows(md)]
    assert sorted(ci) == ["n/a", "n/a", "n/a", "—"]  # the censored cell has no estimate at all
    assert "n/a below 3 seeds" in md


# readable options, flags, bands


def test_options_are_rounded_and_name_their_rule():
    D = 199_210
    sparse = json.dumps({"density": 1 / math.sqrt(D)})
    assert fmt_options("sparse", sparse, D) == "sparse (density=1/sqrt(D)≈0.0022)"
    assert fmt_options("sparse", json.dumps({"density": 0.01}), D) == "sparse (density≈0.01)"
    assert fmt_options("kron_sparse", sparse, D) == "kron_sparse (density=1/sqrt(D)≈0.0022)"
    assert fmt_options("fastfood", sparse, D) == "fastfood (density≈0.0022)"  # not its rule
    fastjl = json.dumps({"density": 0.0078125, "nnz_per_row": 4})
    assert fmt_options("fastjl", fastjl, D) == "fastjl (density=nnz_per_row/n, nnz_per_row=4)"
    dense = json.dumps({"distribution": "gaussian", "regenerate": False, "sigma": 0.123456})
    assert fmt_options("dense", dense, D) == \
        "dense (distribution=gaussian, regenerate=false, sigma=0.123)"


def test_diverged_and_retried_runs_are_flagged(frames):
    measurements, runs = frames
    cell = "cell1"  # fc sparse
    probe = (pl.col("cell") == cell) & (pl.col("role") == "probe")
    flagged = runs.with_columns(
        diverged=pl.when(probe & (pl.col("d") == 16) & (pl.col("seed") == 0)).then(True)
        .otherwise(pl.col("diverged")),
        retries=pl.when(probe & (pl.col("d") <= 32)).then(1).otherwise(0),
    )
    df = table(measurements, flagged)
    row = df.filter(pl.col("cell") == cell).row(0, named=True)
    assert (row["diverged_runs"], row["retried_runs"]) == (1, 6)  # 2 d x 3 seeds retried
    assert df.filter(pl.col("cell") != cell)["retried_runs"].sum() == 0
    md = to_markdown(df)
    assert f"{row['n_runs']} (1 diverged, 6 retried)" in md
    assert md.count("diverged,") == 1


def test_band_of_a_diverged_seed_stays_within_the_score_range():
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure

    probes = pl.DataFrame({"d": [10.0] * 3 + [100.0] * 3, "score": [0.0, 0.0, 0.9, 1.0, 0.99, 0.9]})
    ax = Figure().subplots()
    plots._mean_band(ax, probes, "C0")
    [band] = [c for c in ax.collections if isinstance(c, PolyCollection)]
    y = band.get_paths()[0].vertices[:, 1]
    assert y.min() == 0.0 and y.max() == 1.0  # mean - sd at d=10 is < 0, mean + sd at 100 > 1
    [line] = ax.get_lines()
    assert list(line.get_ydata()) == pytest.approx([0.3, 0.9633333])


# the comparison view


def _scaled_probes(probes: str, factor: float) -> str:
    """The stored probes JSON with every d times ``factor`` (the same scores)."""
    return json.dumps([{**p, "d": round(p["d"] * factor)} for p in json.loads(probes)])


def _without_ratio_interval(entry: str) -> str:
    """A comparison entry without the ratio's interval (and its ≈): ``281 [270, ∞) ×1.50``."""
    return re.sub(r"(×\S+) \[[^\[]*[\])]( ≈)?$", r"\1", entry)


def test_comparison_has_one_row_per_model_and_a_column_per_projection_and_method(frames):
    measurements, runs = frames
    fc_dense = measurements.filter(pl.col("cell") == "cell3")  # fc dense: 187.4 [161.7, 238.2]
    rbd = fc_dense.with_columns(  # dense's curve at half the d: half its d_int
        cell=pl.lit("cell9"), method=pl.lit("rbd"), projection=pl.lit("fastfood"),
        compartments=pl.lit("layer"), d_int=pl.lit(93.7), ci_low=pl.lit(80.0),
        ci_high=pl.lit(120.0), probes=pl.lit(_scaled_probes(fc_dense["probes"][0], 0.5)))
    df = table(pl.concat([measurements, rbd]), runs)
    headers, rows = comparison.comparison(df)
    assert headers == ["Model", "Dataset", "D", "dense fpd", "fastfood fpd",
                       "fastfood rbd (layer compartments)", "sparse fpd"]
    assert [[_without_ratio_interval(e) for e in r] for r in rows] == [
        ["fc[depth=1,width=64]", "digits", str(D_FC), "187 [162, 238] ×1.00", "",
         "94 [80, 120] ×0.50", "281 [270, ∞) ×1.50"],
        ["lenet", "digits", str(D_LENET), "≤ 64 [50, 64] ×1.00", "> 1000", "", ""],
    ]
    assert rows[0][5] == "94 [80, 120] ×0.50 [0.50, 0.50]"  # every resample halves d_int alike
    md = format_table(df, "md")
    assert comparison.to_markdown(df) in md and "ratio to d_int90 of dense FPD" in md
    html = format_table(df, "html")
    assert '<table id="comparison">' in html and html.count("<tr>") == df.height + 1 + 3
    assert "<td class=\"num\">187 [162, 238]<br>×1.00</td>" in html  # the ratio on its own line


def test_comparison_counts_total_directions_and_splits_rows_by_budget(frames):
    measurements, runs = frames
    four = measurements.filter(pl.col("cell") == "cell1").with_columns(  # fc sparse, 281 per part
        cell=pl.lit("cell8"), compartments=pl.lit("4"), epochs=pl.lit(5.0))
    df = table(pl.concat([measurements, four]), runs)
    headers, rows = comparison.comparison(df)
    assert headers[:4] == ["Model", "Dataset", "D", "Epochs"] and "sparse fpd (4 compartments)" in headers
    fc5 = next(r for r in rows if r[0] == "fc[depth=1,width=64]" and r[3] == "5")
    # 4 x 281 = 1124 total directions, CI scaled alike; no dense fpd at 5 epochs: no ratio
    assert fc5[headers.index("sparse fpd (4 compartments)")] == "1124 [1082, ∞)"
    assert len(rows) == 3  # fc at 2 and 5 epochs, lenet at 2


@pytest.mark.parametrize("field,value,title", [("tune_draw", 1, "Tuner draw"), ("replicate", 1, "Replicate")])
def test_tuner_draws_get_a_column_and_a_comparison_row_each(frames, field, value, title):
    measurements, runs = frames
    fc = measurements.filter(pl.col("cell").is_in(["cell1", "cell3"]))  # fc sparse 281, dense 187
    first = fc[field][0]
    other = fc.with_columns(pl.lit(value).cast(fc.schema[field]).alias(field),
                            cell=pl.col("cell") + "-other", d_int=pl.col("d_int") * 1.5)
    df = table(pl.concat([fc, other]), runs)
    md = to_markdown(df)
    header = [c.strip() for c in md.splitlines()[0].strip("|").split(" | ")]
    assert sorted(r[header.index(title)] for r in _md_rows(md)) == sorted([str(first)] * 2
                                                                          + [str(value)] * 2)
    headers, rows = comparison.comparison(df)
    assert headers[:4] == ["Model", "Dataset", "D", title]
    assert [r[3] for r in rows] == sorted([str(first), str(value)])
    assert rows[[r[3] for r in rows].index(str(value))][headers.index("dense fpd")].startswith("281 ")
    assert title not in to_markdown(table(fc, runs))  # one value: no column


def test_cells_that_start_elsewhere_get_a_comparison_row_each(frames):
    """A fine-tuning board: cells that differ only in theta0 or SAID are rows of their own in the
    comparison view (not one cell shown for all of them)."""
    measurements, runs = frames
    fc = measurements.filter(pl.col("cell").is_in(["cell1", "cell3"]))  # fc sparse 281, dense 187
    burnt = fc.with_columns(cell=pl.col("cell") + "-b", theta0=pl.lit("burn-in[steps=2,lr=0.05]"),
                            d_int=pl.col("d_int") / 2)
    said = fc.with_columns(cell=pl.col("cell") + "-s", said=pl.lit(True), d_int=pl.col("d_int") * 2)
    headers, rows = comparison.comparison(table(pl.concat([fc, burnt, said], how="diagonal"), runs))
    assert headers[3:5] == ["theta0", "SAID"]
    dense = {(r[3], r[4]): r[headers.index("dense fpd")].split()[0] for r in rows}
    assert dense == {("init", "false"): "187", ("burn-in[steps=2,lr=0.05]", "false"): "94",
                     ("init", "true"): "375"}  # 187.3 x 2


def test_cells_pooled_over_draws_compare_by_welchs_ratio_and_say_so(frames):
    """Rows pooled over independent draws (idbench.draws) get the ratio of their geometric means
    with Welch's interval over the draws, and the captions describe that interval."""
    from idbench.estimate import pooled_ratio

    measurements, runs = frames
    fc = measurements.filter(pl.col("cell").is_in(["cell1", "cell3"]))  # fc sparse 281, dense 187
    draws = {"sparse": [250.0, 281.0, 316.0], "dense": [170.0, 187.0, 205.0]}
    pooled = fc.with_columns(draws=pl.lit(3), draw_d_ints=pl.col("projection").map_elements(
        lambda p: json.dumps(draws[p]), return_dtype=pl.String))
    df = table(pooled, runs)
    headers, rows = comparison.comparison(df)
    value, low, high = pooled_ratio(draws["sparse"], draws["dense"])
    entry = rows[0][headers.index("sparse fpd")]
    assert f"×{fmt_ratio(value)} [{fmt_ratio(low)}, {fmt_ratio(high)}]" in entry
    assert "Welch" in comparison.caption(df) and "independent draws" in interval_caption(df)
    assert "Welch" not in comparison.caption(table(fc, runs))



def test_a_ratio_of_a_cell_that_passes_at_d_min_is_marked_as_a_bound(frames):
    """A cell passing at its smallest d (d_lo None) has an upper-bound d_int, so its ratio to dense
    is marked ``≤`` (dense passing so: ``≥``) and the caption says so; where both do, no ratio."""
    measurements, runs = frames
    fc = measurements.filter(pl.col("cell").is_in(["cell1", "cell3"]))  # fc sparse 281, dense 187
    draws = {"sparse": [250.0, 281.0, 316.0], "dense": [170.0, 187.0, 205.0]}
    pooled = fc.with_columns(draws=pl.lit(3), draw_d_ints=pl.col("projection").map_elements(
        lambda p: json.dumps(draws[p]), return_dtype=pl.String))

    def sparse_entry(at_d_min: list[str]) -> tuple[str, str]:
        df = table(pooled.with_columns(d_lo=pl.when(pl.col("projection").is_in(at_d_min))
                                       .then(None).otherwise(pl.col("d_lo"))), runs)
        headers, rows = comparison.comparison(df)
        return rows[0][headers.index("sparse fpd")], comparison.caption(df)

    plain, caption = sparse_entry([])
    assert " ×" in plain and "≤ ×" not in plain and "≤ × (≥ ×)" not in caption
    upper, caption = sparse_entry(["sparse"])
    assert upper.split(" ≤ ×")[1] == plain.split(" ×")[1] and "≤ × (≥ ×)" in caption
    lower, _ = sparse_entry(["dense"])
    assert lower.split(" ≥ ×")[1] == plain.split(" ×")[1]
    neither, _ = sparse_entry(["sparse", "dense"])
    assert "×" not in neither


def test_a_pooled_cell_censored_by_some_of_its_draws_says_how_many(frames):
    """One censored draw censors a pooled cell; the table says how many of its draws did, so a
    reader can tell one stray draw from a cell that never crosses."""
    measurements, runs = frames
    lenet = measurements.filter(pl.col("cell") == "cell0")  # lenet fastfood, censored at d_max 1000
    for draws, shown in (("[null, 300.0, 320.0]", "> 1000 (1 of 3 draws)"),
                         ("[null, null, null]", "> 1000")):
        df = table(lenet.with_columns(draws=pl.lit(3), draw_d_ints=pl.lit(draws)), runs)
        md = to_markdown(df)
        header = [c.strip() for c in md.splitlines()[0].strip("|").split(" | ")]
        d_int_column = next(i for i, h in enumerate(header) if h.startswith("d_int"))
        assert _md_rows(md)[0][d_int_column] == shown
        assert ("(k of R draws)" in md) == (shown != "> 1000")  # explained where shown
        headers, rows = comparison.comparison(df)
        assert rows[0][headers.index("fastfood fpd")].startswith(shown)
    assert "> 1000 |" in to_markdown(table(lenet, runs))  # one measurement: no draws to count

def test_several_optimisers_get_a_column_each_and_ratios_to_dense_of_the_same_optimiser(frames):
    measurements, runs = frames
    fc = measurements.filter(pl.col("cell").is_in(["cell1", "cell3"]))  # fc sparse 281, dense 187
    adam = fc.with_columns(cell=pl.col("cell") + "-adam", optimizer=pl.lit("adam"),
                           d_int=pl.col("d_int") / 2, ci_low=pl.col("ci_low") / 2,
                           ci_high=pl.col("ci_high") / 2)
    df = table(pl.concat([fc, adam]), runs)
    md = to_markdown(df)
    header = [c.strip() for c in md.splitlines()[0].strip("|").split(" | ")]
    assert "Optimiser" in header
    assert sorted(r[header.index("Optimiser")] for r in _md_rows(md)) == ["adam", "adam", "sgd", "sgd"]
    headers, rows = comparison.comparison(df)
    assert headers[3:] == ["dense fpd (adam)", "dense fpd (sgd)", "sparse fpd (adam)",
                           "sparse fpd (sgd)"]
    [fc_row] = rows
    # each ratio is to dense fpd trained by the same optimiser: 140.5 / 93.7 and 281 / 187.4
    assert [_without_ratio_interval(e) for e in fc_row[3:]] == [
        "94 [81, 119] ×1.00", "187 [162, 238] ×1.00", "140 [135, ∞) ×1.50", "281 [270, ∞) ×1.50"]
    assert "dense FPD without compartments with the same optimiser" in comparison.caption(df)


# budget and model-size plots


def _variants(frames, changes: list[dict]) -> pl.DataFrame:
    """Copies of the fc dense measurement (cell3), one per dict of column values."""
    base = frames[0].filter(pl.col("cell") == "cell3")
    return pl.concat([
        base.with_columns(cell=pl.lit(f"v{i}"), **{k: pl.lit(v) for k, v in change.items()})
        for i, change in enumerate(changes)
    ], how="vertical_relaxed")


def _errorbar_points(fig) -> list[list[tuple[float, float]]]:
    """(x, y) of the markers of every error-bar line of the figure's first axes."""
    ax = fig.axes[0]
    return [list(zip(line.get_xdata(), line.get_ydata())) for line in ax.get_lines()
            if line.get_marker() == "o"]


def test_dint_against_the_budget_plot(frames, tmp_path):
    budgets = {1.0: 400.0, 2.0: 300.0, 5.0: 250.0, 10.0: 245.0}
    changes = [dict(epochs=e, d_int=d, ci_low=d * 0.9, ci_high=d * 1.1) for e, d in budgets.items()]
    df = table(_variants(frames, changes), frames[1])
    assert plots.has_budgets(df) and not plots.has_family(df)
    [points] = _errorbar_points(plots.dint_vs_budget(df))
    assert points == [(e, pytest.approx(d)) for e, d in budgets.items()]
    paths = render(_variants(frames, changes), frames[1], tmp_path / "lb", formats=("md",))
    assert "dint_vs_budget.png" in paths and "dint_vs_D.png" not in paths
    assert not plots.has_budgets(table(*frames))  # one budget: no such plot


def test_dint_against_D_plot_has_one_line_per_depth(frames, tmp_path):
    sizes = {(k, w): 784 * w + w + (k - 1) * (w * w + w) + 10 * w + 10
             for k in (1, 2) for w in (50, 100, 200)}
    changes = [dict(model=f"fc[depth={k},width={w}]", D=D, d_int=300.0 + k, ci_low=280.0,
                    ci_high=330.0) for (k, w), D in sizes.items()]
    df = table(_variants(frames, changes), frames[1])
    assert plots.has_family(df) and not plots.has_budgets(df)
    lines = _errorbar_points(plots.dint_vs_D(df))
    assert sorted(lines) == sorted(
        [[(sizes[(k, w)], 300.0 + k) for w in (50, 100, 200)] for k in (1, 2)])
    paths = render(_variants(frames, changes), frames[1], tmp_path / "lb", formats=("md",))
    assert "dint_vs_D.svg" in paths
    assert not plots.has_family(table(*frames))  # two models of different families


def test_psi_against_d_plot_shows_one_cell_in_both_spaces(frames, tmp_path):
    """Runs with training-path metrics: psi_vs_d draws the first cell's mean psi per d in z- and
    theta-space; without them (older rows) there is no such plot."""
    measurements, runs = frames
    cell = table(*frames)["cell"][0]
    probe = (pl.col("cell") == cell) & (pl.col("role") == "probe")
    runs = runs.with_columns(
        z_psi=pl.when(probe).then(1 / pl.col("d").cast(pl.Float64).sqrt() + pl.col("seed") * 0.01),
        theta_psi=pl.when(probe).then(0.5 + pl.col("seed") * 0.01),
    )
    df = table(measurements, runs)
    assert plots.applies("psi_vs_d", df, runs) and not plots.applies("psi_vs_d", df, frames[1])
    lines = [line for line in plots.psi_vs_d(df, runs).axes[0].get_lines()
             if line.get_marker() == "o"]
    ds = sorted(runs.filter(probe)["d"].unique().to_list())
    z_line, theta_line = (list(zip(line.get_xdata(), line.get_ydata())) for line in lines)
    assert z_line == [(d, pytest.approx(d ** -0.5 + 0.01)) for d in ds]  # mean over seeds 0..2
    assert theta_line == [(d, pytest.approx(0.51)) for d in ds]
    paths = render(measurements, runs, tmp_path / "lb", formats=("md",))
    assert "psi_vs_d.png" in paths and "psi_vs_d.svg" in paths


def test_layer_compartments_count_d_as_the_total_and_the_caption_states_the_split(frames):
    measurements, runs = frames
    layer = measurements.with_columns(compartments=pl.lit("layer"))
    # the runs say so too: d is the total (d_total == d), split across 2 layers
    df = table(layer, runs.with_columns(n_compartments=pl.lit(2)))
    row = df.filter(pl.col("cell") == "cell3").row(0, named=True)
    assert row["d_int_total"] == pytest.approx(187.4) and row["compression"] == pytest.approx(D_FC / 187.4)
    md = to_markdown(df)
    assert "split equally across the layers" in md and "per compartment for K" not in md


# optimisers at SGD's threshold


def _optimiser_cell(base: dict, optimizer: str, threshold_score: float,
                    curve: dict[int, list[float]]) -> dict:
    probes = [{"d": d, "mean": sum(s) / len(s), "std": 0.0, "scores": s,
               "passed": sum(s) / len(s) >= threshold_score} for d, s in curve.items()]
    return {**base, "cell": f"{base['cell']}-{optimizer}", "optimizer": optimizer,
            "threshold_score": threshold_score, "probes": json.dumps(probes)}


def test_optimisers_are_read_at_the_threshold_of_sgd_beside_them(frames):
    """Each optimiser's own probes, read at SGD's threshold score: a log-interpolated crossing with
    its CI, '≤ d' when its smallest probe already reaches it, '> d' when its largest does not."""
    measurements, runs = frames
    base = measurements.filter(pl.col("cell") == "cell3").to_dicts()[0]  # fc dense
    flat = [0.5, 0.5, 0.5]
    sgd = _optimiser_cell(base, "sgd", 0.6, {100: [0.5, 0.55, 0.45], 400: [0.7, 0.7, 0.7]})
    # adam's mean crosses 0.6 half-way (0.5 -> 0.7) between 100 and 400, in log d: at 200
    adam = _optimiser_cell(base, "adam", 0.65, {100: flat, 400: [0.7, 0.7, 0.7]})
    ngd = _optimiser_cell(base, "ngd", 0.5, {50: [0.61, 0.62, 0.63], 800: [0.8, 0.8, 0.8]})
    adamw = _optimiser_cell(base, "adamw", 0.4, {50: flat, 800: flat})
    rows = pl.DataFrame([sgd, adam, ngd, adamw], schema=measurements.schema)
    df = table(rows, runs)
    headers, [line] = common_threshold.view(df)
    assert headers == ["Model", "Dataset", "Cell", "SGD's threshold", "sgd", "adam", "adamw", "ngd"]
    got = dict(zip(headers, line))
    assert got["SGD's threshold"] == "0.600" and got["Cell"] == "dense fpd"
    assert got["adam"] == "200 [200, 200]"  # identical seeds: every resample gives 200 too
    assert got["ngd"] == "≤ 50" and got["adamw"] == "> 800"
    # SGD read at its own threshold is its own estimate and interval
    own = [Probe(p["d"], tuple(p["scores"]), p["passed"]) for p in json.loads(sgd["probes"])]
    found = estimate(curve_of(own, 0.6))
    point, low, high = found.d_int, found.ci_low, found.ci_high
    assert got["sgd"] == f"{point:.0f} [{low:.0f}, {high:.0f}]"
    md = format_table(df, "md")
    assert "Optimisers at SGD's threshold" in md and "| dense fpd | 0.600 |" in md
    assert 'id="common-threshold"' in to_html(df)
    # a second replicate of the same cells: a row of its own, told apart by its column
    again = rows.with_columns(replicate=pl.lit(1, pl.Int64), cell=pl.col("cell") + "-r1")
    headers, lines = common_threshold.view(table(pl.concat([rows, again]), runs))
    assert headers[2] == "Replicate" and [line[2] for line in lines] == ["0", "1"]
    assert lines[0][3:] == lines[1][3:] == line[2:]


def test_optimisers_pooled_over_draws_are_read_draw_by_draw_and_pooled(frames):
    """A cell of independent draws: each draw's probes are read at SGD's threshold score and the
    crossings pooled as d_int is (geometric mean, Student-t interval over the draws); a draw that
    passes at its smallest probe makes the pooled value a bound, one that never reaches it '>'."""
    measurements, runs = frames
    base = measurements.filter(pl.col("cell") == "cell3").to_dicts()[0]

    def drawn(optimizer: str, curves: list[dict[int, float]]) -> dict:
        probes = [{"d": d, "mean": m, "std": 0.0, "scores": [m], "passed": m >= 0.6, "draw": i}
                  for i, curve in enumerate(curves) for d, m in curve.items()]
        return {**base, "cell": f"pooled-{optimizer}", "optimizer": optimizer, "draws": 3,
                "draw_d_ints": json.dumps([1.0] * len(curves)), "threshold_score": 0.6,
                "probes": json.dumps(probes)}

    # each draw's mean goes 0.5 -> 0.7 between two probes: it crosses 0.6 at their log midpoint
    sgd = drawn("sgd", [{100: 0.5, 400: 0.7}, {100: 0.5, 900: 0.7}, {100: 0.5, 1600: 0.7}])
    adam = drawn("adam", [{50: 0.5, 200: 0.7}, {50: 0.5, 800: 0.7}, {50: 0.7, 800: 0.8}])
    ngd = drawn("ngd", [{100: 0.5, 800: 0.7}, {100: 0.5, 400: 0.55}, {100: 0.5, 400: 0.7}])
    rows = pl.DataFrame([sgd, adam, ngd], schema=measurements.schema)
    df = table(rows, runs)
    headers, [line] = common_threshold.view(df)
    got = dict(zip(headers, line))
    point, low, high = pooled([200.0, 300.0, 400.0])
    assert got["sgd"] == f"{point:.0f} [{low:.0f}, {high:.0f}]"
    point, low, high = pooled([100.0, 200.0, 50.0])  # the third draw passes at d = 50
    assert got["adam"] == f"≤ {point:.0f} [{low:.0f}, {high:.0f}]"
    assert got["ngd"] == "> 400"  # its second draw never reaches 0.6 up to its largest d
    assert "over its independent draws" in common_threshold.caption(df)


def test_optimisers_are_compared_within_each_start(frames):
    """On a fine-tuning board each (theta0, SAID) start is its own row: Adam from a checkpoint is
    read at the threshold of SGD from that checkpoint, not at another start's."""
    measurements, runs = frames
    base = measurements.filter(pl.col("cell") == "cell3").to_dicts()[0]
    curve = {100: [0.5, 0.5, 0.5], 400: [0.7, 0.7, 0.7]}  # crosses 0.6 at 200, 0.65 at ~283
    cells = []
    for theta0, target in (("init", 0.6), ("checkpoint[run=abc]", 0.65)):
        for optimizer in ("sgd", "adam"):
            cell = _optimiser_cell(base, optimizer, target, curve)
            cells.append({**cell, "cell": f"{cell['cell']}-{theta0}", "theta0": theta0})
    df = table(pl.DataFrame(cells, schema=measurements.schema), runs)
    headers, lines = common_threshold.view(df)
    assert headers[2] == "theta0" and len(lines) == 2
    got = {line[2]: dict(zip(headers, line)) for line in lines}
    assert got["init"]["SGD's threshold"] == "0.600" and got["init"]["adam"] == "200 [200, 200]"
    assert got["checkpoint[run=abc]"]["SGD's threshold"] == "0.650"
    assert got["checkpoint[run=abc]"]["adam"] == "283 [283, 283]"  # 100 x 4^0.75


def test_no_threshold_view_without_several_optimisers_and_sgd(frames):
    measurements, runs = frames
    df = table(measurements, runs)  # sgd only
    assert not common_threshold.applies(df) and common_threshold.to_markdown(df) == ""
    adam_only = table(measurements.with_columns(optimizer=pl.lit("adam")), runs)
    assert not common_threshold.applies(adam_only)
    assert "common-threshold" not in to_html(df)


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.parent.name)
def test_committed_sgd_cells_at_their_own_threshold_repeat_their_d_int(path):
    """An identity on real results: SGD's cell read at its own threshold is its d_int (its
    interval there holds the threshold fixed, so it is the cell's own without the baseline's
    seeds)."""
    measurements, runs = load_results(path.parent)
    df = table(measurements, runs)
    single = measurements.filter(pl.col("draws").fill_null(1) == 1)
    if single.height == 0:  # every cell pooled over draws: their d_int is no one curve's reading
        assert (measurements["draws"] > 1).all()
        return
    if all(g is not None and len(json.loads(g)) == 1 for g in measurements["grid"]):
        # a fixed-d study (one probe d a cell): no crossing is read between probes
        assert measurements["d_lo"].is_null().all()
        return
    checked = 0
    for row in df.filter((pl.col("optimizer") == "sgd") & ~pl.col("censored")
                         & pl.col("cell").is_in(single["cell"].to_list())).to_dicts():
        if row["d_lo"] is None or row["ci_low"] is None:
            continue
        probes = [Probe.from_dict(p) for p in json.loads(row["probes"])]
        fixed = estimate(curve_of(probes, row["threshold_score"]))
        expected = f"{fmt_num(row['d_int'])} {fmt_interval(fixed.ci_low, fixed.ci_high)}"
        assert common_threshold.reach(row["probes"], row["threshold_score"]) == expected
        checked += 1
    assert checked


def test_dint_by_projection_labels_wrap_and_count_epochs(frames):
    """Cell labels wrap (a long one line would squeeze the axis) and say "1 epoch", "2 epochs"."""
    one = table(_variants(frames, [dict(epochs=1.0, compartments="layer")]), frames[1])
    fig = plots.dint_by_projection(one)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels and all(max(len(line) for line in label.split("\n")) <= 32 for label in labels)
    assert all(label.replace("\n", " ").endswith("1 epoch") for label in labels)
    two = table(_variants(frames, [dict(epochs=2.0)]), frames[1])
    assert all(t.get_text().replace("\n", " ").endswith("2 epochs")
               for t in plots.dint_by_projection(two).axes[0].get_yticklabels())


def test_dint_by_projection_axis_spans_the_finite_values_and_marks_an_open_end(frames):
    """An interval open to infinity does not stretch the log axis to d_max: the axis ends a margin
    beyond the largest finite value, and that interval's bar ends there in an arrow."""
    df = table(*frames).filter(~pl.col("censored"))
    assert df.filter(pl.col("ci_high").is_infinite()).height == 1
    finite = [v for col in ("d_int", "ci_low", "ci_high") for v in df[col].to_list()
              if v is not None and math.isfinite(v)]
    ax = plots.dint_by_projection(df).axes[0]
    left, right = ax.get_xlim()
    assert right == pytest.approx(max(finite) * plots.OPEN_MARGIN)
    assert left == pytest.approx(min(finite) / plots.OPEN_MARGIN)
    assert right < df["d_max"].max()
    arrows = [line for line in ax.get_lines() if line.get_marker() == ">"]
    assert [list(a.get_xdata()) for a in arrows] == [[right]]


def test_dint_by_projection_spreads_each_cells_own_projections_around_its_label(frames):
    """A cell measured under one projection sits on its label, not where the board's n-th
    projection would sit."""
    df = table(*frames)
    ys = plots._cell_offsets(df)
    for g in set(groups(df)):
        mine = [y for y, h in zip(ys, groups(df)) if h == g]
        assert sum(mine) / len(mine) == pytest.approx(g)


def test_a_board_whose_cells_start_differently_shows_theta0_and_said(tmp_path):
    """theta0 and SAID are columns (and split groups) only where the board's cells differ in
    them: a board of cells from init, measured before or after them, looks as it did."""
    import idbench
    from idbench.config import MeasureConfig

    tiny = dict(model="fc[depth=1,width=8]", dataset="digits", draws=1, seeds=1, steps=6, tune_trials=0,
                grid=(4, 16))
    for options in ({}, {"theta0": "burn-in[steps=3,lr=0.1]"},
                    {"theta0": "burn-in[steps=3,lr=0.1]", "said": True}):
        idbench.measure(MeasureConfig(**tiny, **options), out=tmp_path)
    measurements, runs = load_results(tmp_path)
    df = table(measurements, runs)
    assert df["theta0"].to_list() == ["burn-in[steps=3,lr=0.1]"] * 2 + ["init"]
    assert df["said"].to_list() == [False, True, False] and groups(df) == [0, 1, 2]
    assert "| theta0 | SAID |" in format_table(df, "md")
    plain = table(measurements.filter(pl.col("theta0") == "init"), runs)
    assert "theta0" not in plain.columns and "said" not in plain.columns
    assert plots.has_burn_ins(df) and not plots.has_burn_ins(plain)
    titles = [plots._panel_title(row, width=200) for row in df.iter_rows(named=True)]
    assert [t.split(" epochs")[1] for t in titles] == [
        ", from burn-in[steps=3,lr=0.1]", ", from burn-in[steps=3,lr=0.1], SAID", ", from init"]
    assert [plots._panel_title(row, width=200) for row in plain.iter_rows(named=True)] == [
        titles[2].removesuffix(", from init")]
    figure = plots.dint_by_projection(df)
    ticks = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert ticks == [plots._panel_title(row, width=32) for row in df.iter_rows(named=True)]
    lines = max(t.count("\n") + 1 for t in ticks)  # labels taller than a row's markers need
    assert lines * plots.LABEL_LINE > 0.32
    assert figure.get_size_inches()[1] == pytest.approx(1.4 + 3 * lines * plots.LABEL_LINE)
    files = render(measurements, runs, tmp_path / "board", formats=["md"])
    assert {"dint_vs_burn_in.png", "dint_vs_burn_in.svg"} <= set(files)
    assert "dint_vs_burn_in.png" not in render(measurements.filter(pl.col("theta0") == "init"),
                                               runs, tmp_path / "plain", formats=["md"])
    # a cell from init trained by Adam is not a point of SGD's lines: it has no burn-in, so no line
    crossed = measurements.with_columns(censored=pl.lit(False), d_int=pl.lit(8.0))
    adam = crossed.filter(pl.col("theta0") == "init").with_columns(
        optimizer=pl.lit("adam"), cell=pl.col("cell") + "-adam", d_int=pl.lit(24.0))
    lines = [line for line in plots.dint_vs_burn_in(table(pl.concat([crossed, adam]), runs))
             .axes[0].get_lines() if line.get_marker() == "o"]
    assert [list(line.get_xdata()) for line in lines] == [[0.0, 3.0]]  # SGD without SAID
    assert list(lines[0].get_ydata()) == [8.0, 8.0]


# flags and what the interval covers


def _flagged(frames) -> pl.DataFrame:
    """The fixture's rows with flags: fc sparse threshold-low and flat, lenet dense none checked
    yet (a row from before flags), the rest checked with none raised."""
    flags = {"cell1": "threshold-low,flat", "cell2": None}
    return frames[0].with_columns(pl.Series("flags", [flags.get(c, "") for c in
                                                      frames[0]["cell"]], pl.String))


def test_flags_are_marked_after_d_int_and_explained_once(frames):
    df = table(_flagged(frames), frames[1])
    md = to_markdown(df)
    header = [c.strip() for c in md.splitlines()[0].strip("|").split(" | ")]
    got = {(r[0], r[header.index("Projection")]): r[header.index("d_int90")] for r in _md_rows(md)}
    assert got[("fc[depth=1,width=64]", "sparse")] == "281 †§"
    assert got[("fc[depth=1,width=64]", "dense")] == "187"
    assert got[("lenet", "dense")] == "≤ 64"  # flags null: nothing shown
    assert md.count("† threshold-low: the subspace reaches the threshold at d_min") == 1
    assert "‡ falls: the mean score falls as d grows" in md and "§ flat: at the crossing" in md
    assert "\\dag{}\\S{}" in to_latex(df)
    html = to_html(df)
    assert '>281 <abbr title="threshold-low">†</abbr><abbr title="flat">§</abbr><' in html
    assert "§ flat:" in html
    back = pl.read_csv(io.StringIO(to_csv(df)), schema_overrides={"flags": pl.String})
    assert dict(zip(back["cell"], back["flags"])) == {
        "cell0": "", "cell1": "threshold-low,flat", "cell2": None, "cell3": ""}
    # rows from before flags only: no marks and no legend
    assert "threshold-low" not in to_markdown(table(*frames))


def test_the_caption_says_what_the_interval_is_and_covers(frames):
    covers = "seeds, baseline seeds (not the tuner's draw)"
    same = frames[0].with_columns(ci_covers=pl.lit(covers))
    md = to_markdown(table(same, frames[1]))
    assert f"It covers: {covers}." in md and "ᵃ" not in md
    assert "monotone (isotonic) fit of the probes' mean scores" in md
    assert "Student-t scaled" in md and "percentile" not in md and "widened" not in md
    # rows that differ: each interval carries the mark of what it covers
    mixed = same.with_columns(ci_covers=pl.when(pl.col("cell") == "cell3")
                              .then(pl.lit("seeds, baseline seeds, tuner draws"))
                              .otherwise(pl.col("ci_covers")))
    md = to_markdown(table(mixed, frames[1]))
    header = [c.strip() for c in md.splitlines()[0].strip("|").split(" | ")]
    ci = {(r[0], r[header.index("Projection")]): r[header.index("95% CI")] for r in _md_rows(md)}
    assert ci[("fc[depth=1,width=64]", "dense")] == "[162, 238] ᵇ"
    assert ci[("fc[depth=1,width=64]", "sparse")] == "[270, ∞) ᵃ"
    assert ci[("lenet", "fastfood")] == "—"  # censored: no interval, no mark
    assert f"marked on each interval: ᵃ {covers}; ᵇ seeds, baseline seeds, tuner draws." in md
    assert "It covers" not in md and "\\textsuperscript{a}" in to_latex(table(mixed, frames[1]))
    assert "It covers: not recorded" in to_markdown(table(*frames))  # rows from before the column
    # a row without an interval (censored) covers nothing shown: no mark of its own
    censored = same.with_columns(ci_covers=pl.when(pl.col("censored")).then(pl.lit("none"))
                                 .otherwise(pl.col("ci_covers")))
    assert f"It covers: {covers}." in to_markdown(table(censored, frames[1]))


def test_the_caption_states_the_budget(frames):
    """One budget is said in the caption; budgets that differ are the Epochs column's."""
    for epochs, said in [(1.0, "Budget: 1 epoch per run,"), (5.0, "Budget: 5 epochs per run,")]:
        md = to_markdown(table(frames[0].with_columns(epochs=pl.lit(epochs)), frames[1]))
        assert said in md and "| Epochs |" not in md
    mixed = frames[0].with_columns(
        epochs=pl.when(pl.col("cell") == "cell3").then(2.0).otherwise(1.0))
    md = to_markdown(table(mixed, frames[1]))
    assert "Budget: the Epochs column," in md and "| Epochs |" in md


def _dense_copies(frames, changes: list[dict]) -> pl.DataFrame:
    """fc dense (cell3) and copies of it as other projections, one per dict of column values."""
    base = frames[0].filter(pl.col("cell") == "cell3")
    copies = [base.with_columns(cell=pl.lit(f"copy{i}"), **{k: pl.lit(v) for k, v in c.items()})
              for i, c in enumerate(changes)]
    return pl.concat([base, *copies], how="vertical_relaxed")


def test_comparison_ratio_has_its_own_interval_and_marks_indistinguishable(frames):
    """A curve at twice the d: ratio 2 in every shared resample, [2, 2]; four compartments of the
    same curve: 4 in total directions; a noisier curve around dense's: an interval containing 1,
    marked ≈; its numbers are estimate.ratio's on the two cells' curves."""
    base = frames[0].filter(pl.col("cell") == "cell3").row(0, named=True)
    noisy = [{**p, "scores": [p["scores"][0] - 0.06, p["scores"][1], p["scores"][2] + 0.05]}
             for p in json.loads(base["probes"])]
    rows = _dense_copies(frames, [
        dict(projection="sparse", probes=_scaled_probes(base["probes"], 2.0),
             d_int=2 * base["d_int"], ci_low=2 * base["ci_low"], ci_high=2 * base["ci_high"]),
        dict(projection="kron", compartments="4"),
        dict(projection="fastfood", probes=json.dumps(noisy)),
    ])
    headers, [line] = comparison.comparison(table(rows, frames[1]))
    got = dict(zip(headers, line))
    assert got["sparse fpd"].endswith(" ×2.00 [2.00, 2.00]")
    assert got["kron fpd (4 compartments)"].endswith(" ×4.00 [4.00, 4.00]")
    curve = [curve_of([Probe.from_dict(p) for p in probes], THRESHOLD_SCORE)
             for probes in (noisy, json.loads(base["probes"]))]
    value, low, high = curve_ratio(*curve)
    assert low < 1 < high and value != 1
    assert got["fastfood fpd"].endswith(f" ×{value:.2f} [{low:.2f}, {high:.2f}] ≈")
    assert got["dense fpd"].endswith(" ×1.00")  # the reference itself: no interval, no mark
    assert "≈: the ratio's interval contains 1" in comparison.caption(table(rows, frames[1]))
    found = {column: r for _, column, r in comparison.ratios(table(rows, frames[1]))}
    assert set(found) == {"sparse fpd", "kron fpd (4 compartments)", "fastfood fpd"}
    assert found["fastfood fpd"].indistinguishable and not found["sparse fpd"].indistinguishable


def test_comparison_marks_flags_and_splits_rows_by_replicate(frames):
    rows = _dense_copies(frames, [dict(projection="sparse", flags="falls"),
                                  dict(replicate=1), dict(projection="sparse", replicate=1)])
    headers, lines = comparison.comparison(table(rows, frames[1]))
    assert headers[:4] == ["Model", "Dataset", "D", "Replicate"] and len(lines) == 2
    first = dict(zip(headers, lines[0]))
    assert first["Replicate"] == "0" and first["sparse fpd"].startswith("187 ‡ [162, 238] ×1.00")
    assert dict(zip(headers, lines[1]))["sparse fpd"].startswith("187 [162, 238] ×1.00")


def test_ratio_plot_draws_each_ratio_with_its_interval_and_a_line_at_one(frames, tmp_path):
    base = frames[0].filter(pl.col("cell") == "cell3").row(0, named=True)
    rows = _dense_copies(frames, [
        dict(projection="sparse", probes=_scaled_probes(base["probes"], 2.0)),
        dict(projection="kron", compartments="4"),
    ])
    df = table(rows, frames[1])
    assert plots.applies("ratio_to_dense", df)
    ax = plots.ratio_to_dense(df).axes[0]
    dots = sorted(line.get_xdata()[0] for line in ax.get_lines() if line.get_marker() == "o")
    assert dots == [pytest.approx(2.0), pytest.approx(4.0)]
    bars = [list(line.get_xdata()) for line in ax.get_lines()
            if line.get_marker() in ("None", "") and len(line.get_xdata()) == 2]
    assert sorted(bars) == [[1.0, 1.0], [pytest.approx(2.0)] * 2, [pytest.approx(4.0)] * 2]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["fc[depth=1,width=64] · digits"]
    paths = render(rows, frames[1], tmp_path / "lb", formats=("md",))
    assert "dint_ratio_to_dense.png" in paths
    # no dense FPD cell beside any other: no ratio, no plot
    alone = table(frames[0].filter(pl.col("projection") != "dense"), frames[1])
    assert not plots.applies("ratio_to_dense", alone)
