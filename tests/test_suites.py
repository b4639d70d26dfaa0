"""Suite files: every shipped suite loads and expands; a malformed one names the file and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import idbench.suites as suites
from idbench.config import MeasureConfig
from idbench.errors import IdbenchError
from idbench.suites import Cell, data_available, load_suite, resolve_suite, shipped_suites

SHIPPED = shipped_suites()
REQUIRED = {
    "quickstart", "fashion-mnist-1epoch", "fashion-mnist-settled", "li2018-mnist", "li2018-cifar10", "gargiulo2023-fastjl", "toy",
    "gressmann2020",
}


def write(tmp_path: Path, text: str, name: str = "suite.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def error_of(path: Path | str) -> str:
    with pytest.raises(IdbenchError) as info:
        load_suite(path)
    return str(info.value)


# --------------------------------------------------------------------------- the shipped suites


def test_the_required_suites_are_shipped() -> None:
    assert REQUIRED <= set(SHIPPED), f"missing: {REQUIRED - set(SHIPPED)}"


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_suite_loads_and_expands(name: str) -> None:
    suite = load_suite(SHIPPED[name])
    assert suite.name == name and suite.version
    assert len(suite.hash) == 12
    cells = suite.cells()
    assert cells
    assert all(isinstance(c, Cell) and isinstance(c.config, MeasureConfig) for c in cells)
    assert all(0 <= c.grid < len(suite.grids) for c in cells)
    keys = [c.config.model_dump_json() for c in cells]
    assert len(keys) == len(set(keys)), "cells are deduplicated"


def test_a_shipped_suite_resolves_by_name() -> None:
    assert resolve_suite("quickstart") == SHIPPED["quickstart"]
    assert load_suite("toy").hash == load_suite(SHIPPED["toy"]).hash


def test_quickstart_cells(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(suites, "data_available", lambda spec: True)
    cells = load_suite("quickstart").cells()
    digits = [c for c in cells if str(c.config.dataset) == "digits"]
    assert len(digits) == 8  # 2 models x 4 projections
    assert {str(c.config.projection) for c in digits} == {"dense", "sparse", "fastfood", "fastjl"}
    assert len({c.config.model for c in digits}) == 2
    assert len(cells) == 10 and not any(c.skipped for c in cells)
    assert {str(c.config.dataset) for c in cells} == {"digits", "fashion-mnist"}

    monkeypatch.setattr(suites, "data_available", lambda spec: spec != "fashion-mnist")
    cells = load_suite("quickstart").cells()
    skipped = [c for c in cells if c.skipped]
    assert len(cells) == 10 and len(skipped) == 2
    assert all(str(c.config.dataset) == "fashion-mnist" for c in skipped)
    assert "fashion-mnist" in skipped[0].skipped


def test_toy_suite_asks_for_the_whole_known_answer() -> None:
    cells = load_suite("toy").cells()
    assert len(cells) == 4
    for cell in cells:
        assert cell.config.global_baseline == 1.0 and cell.config.threshold == 1.0
        assert cell.config.d_min <= 10 <= cell.config.d_max


def test_gressmann_suite_is_the_study(monkeypatch: pytest.MonkeyPatch) -> None:
    cells = load_suite("gressmann2020").cells()
    fixed = [c.config for c in cells if c.config.grid == (250,)]
    assert len(fixed) == 6 * 3  # six cells x rbd, fpd, nes
    assert {str(c.method) for c in fixed} == {"rbd", "fpd", "nes"}
    assert all(c.batch_size == 32 and c.val_fraction == 0.25 and c.schedule == "constant"
               for c in fixed)
    searched = [c.config for c in cells if c.config.grid is None]
    assert len(searched) == 6 * 2 and {str(c.method) for c in searched} == {"rbd", "fpd"}


def test_gressmann_fashion_mnist_suite_is_seed_000s_table_with_its_reference() -> None:
    """Both networks x fpd, rbd with Gaussian bases, and FC-128's Fastfood cells beside them at
    the same budget and a longer one, all at d = 250 under the paper's protocol (and FC-128's
    Fastfood cells without augmentation); every row of its reference file has a cell (the
    baseline's rows: any cell of the network)."""
    import polars as pl

    from idbench.leaderboard.reference import SCHEMA, reference_file

    cells = [c.config for c in load_suite("gressmann2020-fmnist").cells()]
    augmented = [c for c in cells if str(c.dataset) != "fashion-mnist"]
    plain = [c for c in cells if str(c.dataset) == "fashion-mnist"]
    assert sorted((str(c.model), str(c.projection), str(c.method), c.epochs) for c in augmented) == [
        ("cnn", "dense", "fpd", 4), ("cnn", "dense", "rbd", 4),
        ("fc[depth=1,width=128]", "dense", "fpd", 4), ("fc[depth=1,width=128]", "dense", "rbd", 4),
        ("fc[depth=1,width=128]", "fastfood", "fpd", 4),
        ("fc[depth=1,width=128]", "fastfood", "fpd", 40),
        ("fc[depth=1,width=128]", "fastfood", "rbd", 4),
        ("fc[depth=1,width=128]", "fastfood", "rbd", 40),
    ]
    assert {(c.grid, c.batch_size, c.momentum, c.schedule, c.warmup, c.seeds, c.tune_grid,
             c.lr_scaling, str(c.dataset), round(60_000 * c.val_fraction)) for c in augmented} == {
        ((250,), 32, 0.0, "constant", 0.0, 3, "pow2", "inverse-sqrt-d",
         "fashion-mnist[augment=true,padding=3,brightness=0.5]", 10_000)}
    # FC-128's Fastfood cells again without augmentation, the same protocol otherwise
    assert sorted((str(c.model), str(c.projection), str(c.method), c.epochs) for c in plain) == [
        ("fc[depth=1,width=128]", "fastfood", "fpd", 4), ("fc[depth=1,width=128]", "fastfood",
                                                          "rbd", 4)]
    assert {(c.grid, c.batch_size, c.momentum, c.seeds, c.lr_scaling) for c in plain} == {
        ((250,), 32, 0.0, 3, "inverse-sqrt-d")}
    published = pl.read_csv(reference_file("gressmann2020-fmnist"), comment_prefix="#",
                            schema=SCHEMA)
    assert published.height == 6
    for ref in published.iter_rows(named=True):
        assert any(str(c.model) == ref["model"] and str(c.dataset).startswith(ref["dataset"])
                   and (ref["method"] == "sgd" or (str(c.method), c.grid) == (
                       ref["method"], (ref["d"],))) for c in cells), ref


# --------------------------------------------------------------------------- expansion


def test_repeated_grid_entries_add_rather_than_multiply(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: "1"
        defaults: {epochs: 1}
        grids:
          - models: ["fc[depth=1]", "fc[depth=2]"]
            datasets: [digits]
            projections: [dense]
          - models: ["fc[depth=1]"]
            datasets: [digits]
            projections: [sparse, fastfood]
    """)
    cells = load_suite(path).cells()
    assert [(str(c.config.model), str(c.config.projection), c.grid) for c in cells] == [
        ("fc[depth=1]", "dense", 0), ("fc[depth=2]", "dense", 0),
        ("fc[depth=1]", "sparse", 1), ("fc[depth=1]", "fastfood", 1),
    ]
    assert all(str(c.config.method) == "fpd" for c in cells)  # the default method


def test_defaults_and_grid_options(tmp_path: Path) -> None:
    path = write(tmp_path, """
        name: mine
        version: 2
        defaults: {seeds: 5, epochs: 2}
        grids:
          - models: [fc]
            datasets: [digits]
          - models: [fc]
            datasets: [toy-sums]
            options: {epochs: 7, grid: [1, 2, 3]}
    """)
    suite = load_suite(path)
    assert suite.name == "mine" and suite.version == "2"
    first, second = (c.config for c in suite.cells())
    assert (first.seeds, first.epochs, first.grid) == (5, 2, None)
    assert (second.seeds, second.epochs, second.grid) == (5, 7, (1, 2, 3))


def test_identical_cells_are_kept_once_in_order(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: "1"
        defaults: {epochs: 1}
        grids:
          - models: [fc, fc]
            datasets: [digits]
            projections: [dense, sparse]
          - models: [fc]
            datasets: [digits]
            projections: [sparse, fastjl]
    """)
    cells = load_suite(path).cells()
    assert [(str(c.config.projection), c.grid) for c in cells] == [
        ("dense", 0), ("sparse", 0), ("fastjl", 1),
    ]


def test_requires_skips_a_grid_when_the_data_is_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, """
        version: "1"
        defaults: {epochs: 1}
        grids:
          - models: [fc]
            datasets: [fashion-mnist]
            projections: [dense, sparse]
            requires: [fashion-mnist]
          - models: [fc]
            datasets: [fashion-mnist]
            projections: [sparse]
    """)
    monkeypatch.setattr(suites, "data_available", lambda spec: False)
    cells = load_suite(path).cells()
    # dense is only in the grid that requires the data; sparse also comes from an unskipped grid
    assert [(str(c.config.projection), c.skipped is not None) for c in cells] == [
        ("dense", True), ("sparse", False),
    ]
    assert "fashion-mnist" in cells[0].skipped
    monkeypatch.setattr(suites, "data_available", lambda spec: True)
    assert not any(c.skipped for c in load_suite(path).cells())


def test_hash_ignores_comments_and_layout_not_content(tmp_path: Path) -> None:
    a = write(tmp_path, 'version: "1"\ndefaults: {epochs: 1}\ngrids: [{models: [fc], '
                        'datasets: [digits]}]\n', "a.yaml")
    b = write(tmp_path, """
        # a comment
        version: "1"
        defaults:
          epochs: 1
        grids:
          - datasets: [digits]
            models: [fc]
    """, "b.yaml")
    c = write(tmp_path, 'version: "1"\ndefaults: {epochs: 1}\ngrids: [{models: [fc], '
                        'datasets: [toy-sums]}]\n', "c.yaml")
    assert load_suite(a).hash == load_suite(b).hash != load_suite(c).hash


def test_data_available(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import idbench.data.vision as vision

    assert data_available("digits") and data_available("toy-sums[groups=3]")
    assert not data_available("no-such-dataset")
    monkeypatch.setenv("IDBENCH_DATA", str(tmp_path / "root"))
    monkeypatch.setattr(vision, "SYSTEM_DATASETS", tmp_path / "system")
    assert not data_available("fashion-mnist")
    (tmp_path / "system" / "fashion-mnist").mkdir(parents=True)
    assert data_available("fashion-mnist")  # the system-wide copy
    assert not data_available("mnist")
    (tmp_path / "root" / "MNIST" / "raw").mkdir(parents=True)
    assert data_available("mnist")  # files in the data root


# --------------------------------------------------------------------------- malformed suites


def test_unknown_key_names_the_file_the_line_and_the_valid_keys(tmp_path: Path) -> None:
    path = write(tmp_path, """
        name: bad
        version: "1"
        grids:
          - models: [fc]
            datasets: [digits]
            epoch: 3
    """)
    message = error_of(path)
    assert str(path) in message and "line 6:" in message
    assert "unknown key 'epoch'" in message and "grids[0]" in message
    assert "valid keys: models, datasets, projections, methods, optimizers, options, requires" in message


def test_unknown_option_in_defaults_suggests_the_right_one(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: "1"
        defaults:
          seeds: 2
          epoch: 3
        grids:
          - models: [fc]
            datasets: [digits]
    """)
    message = error_of(path)
    assert "line 4:" in message and "'epoch'" in message and "did you mean 'epochs'" in message


def test_a_removed_option_names_its_file_line_and_what_replaced_it(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: "1"
        defaults:
          seeds: 2
        grids:
          - models: [fc]
            datasets: [digits]
            options: {tune_pick: fit}
    """)
    message = error_of(path)
    assert str(path) in message and "line 7:" in message
    assert "option tune_pick was removed: a tuning returns its best trial" in message


def test_unknown_top_level_key(tmp_path: Path) -> None:
    path = write(tmp_path, """
        versions: "1"
        grids: [{models: [fc], datasets: [digits]}]
    """)
    message = error_of(path)
    assert "line 1:" in message and "unknown key 'versions'" in message
    assert "did you mean 'version'" in message


def test_wrong_type_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: "1"
        grids:
          - datasets: [digits]
            models: fc
    """)
    message = error_of(path)
    assert str(path) in message and "line 4:" in message
    assert "grids[0].models" in message and "list" in message


def test_wrong_option_type_points_at_the_option(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: "1"
        defaults:
          seeds: 2
          epochs: ten
        grids:
          - models: [fc]
            datasets: [digits]
          - models: [fc]
            datasets: [toy-sums]
            options:
              batch_size: many
    """)
    message = error_of(path)
    assert "line 4:" in message and "defaults.epochs" in message and "number" in message
    fixed = path.read_text().replace("epochs: ten", "epochs: 10")
    path.write_text(fixed)
    message = error_of(path)
    assert "line 11:" in message and "grids[1].options.batch_size" in message


def test_unknown_model_suggests_a_name_and_gives_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: "1"
        grids:
          - models: [fc]
            datasets: [digits]
          - models:
              - fc
              - lenett
            datasets: [digits]
    """)
    message = error_of(path)
    assert str(path) in message and "line 7:" in message
    assert "unknown model 'lenett'" in message and "Did you mean 'lenet'?" in message


@pytest.mark.parametrize("key, value, kind", [
    ("datasets", "[digitz]", "dataset"),
    ("projections", "[fastjll]", "projection"),
    ("methods", "[fdp]", "method"),
    ("requires", "[fashion-mnis]", "dataset"),
])
def test_unknown_names_of_every_kind(tmp_path: Path, key: str, value: str, kind: str) -> None:
    lines = {"models": "[fc]", "datasets": "[digits]", key: value}
    body = "".join(f"    {k}: {v}\n" for k, v in lines.items())
    path = write(tmp_path, 'version: "1"\ngrids:\n  - ' + body.lstrip())
    message = error_of(path)
    row = 3 + list(lines).index(key)
    assert f"line {row}:" in message and f"unknown {kind}" in message and "Did you mean" in message


def test_an_option_the_component_does_not_take(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: "1"
        grids:
          - models: ["fc[dept=2]"]
            datasets: [digits]
    """)
    message = error_of(path)
    assert "line 3:" in message and "'dept'" in message and "depth, width" in message


@pytest.mark.parametrize("text, line", [
    ('version: "1"\ngrids:\n  - models: []\n    datasets: [digits]\n', 3),
    ('version: "1"\ngrids: []\n', 2),
])
def test_an_empty_grid_is_an_error(tmp_path: Path, text: str, line: int) -> None:
    message = error_of(write(tmp_path, text))
    assert f"line {line}:" in message and "is empty" in message


def test_a_bad_cell_reports_its_grid(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: "1"
        defaults: {epochs: 1}
        grids:
          - models: [fc]
            datasets: [digits]
          - models: [fc]
            datasets: [digits]
            options: {d_min: 100, d_max: 10}
    """)
    message = error_of(path)
    assert "line 8: grids[1].options.d_min: d_min (100) is larger than d_max (10)" in message


def test_a_check_across_options_names_the_line_of_the_first_it_names(tmp_path: Path) -> None:
    """A check of several options together points at the one its message names first, where the
    file sets it (here d_min, in the grid, though d_max is set before it in the defaults)."""
    path = write(tmp_path, """
        version: "1"
        defaults: {epochs: 1, d_max: 250}
        grids:
          - models: [fc]
            datasets: [digits]
            options:
              seeds: 2
              d_min: 250
    """)
    assert "line 8: grids[0].options.d_min: d_min = d_max = 250" in error_of(path)


def test_a_search_range_of_one_d_is_refused_and_a_grid_of_that_d_is_not(tmp_path: Path) -> None:
    search = write(tmp_path, """
        version: "1"
        defaults: {epochs: 1, d_min: 250, d_max: 250}
        grids:
          - models: [fc]
            datasets: [digits]
    """)
    message = error_of(search)
    assert "line 2: defaults.d_min:" in message
    assert "set grid: [250] to measure the score at d = 250" in message
    one_d = write(tmp_path, """
        version: "1"
        defaults: {epochs: 1, grid: [250]}
        grids:
          - models: [fc]
            datasets: [digits]
    """)
    assert [c.config.grid for c in load_suite(one_d).cells()] == [(250,)]


GRID = "grids:\n  - models: [fc]\n    datasets: [digits]\n"


@pytest.mark.parametrize("head, grid_options, line, phrase", [
    ("", "", 3, "grids[0] has no training budget"),  # no budget anywhere: no default is taken
    ("defaults: {seeds: 1}\n", "", 4, "grids[0] has no training budget"),
    ("defaults:\n  epochs:\n", "", 3, "grids[0] has no training budget"),  # written, no value
    ("defaults: {epochs: 0}\n", "", 2, "defaults.epochs: a budget of 0 epochs trains nothing"),
    ("defaults: {epochs: 2}\n", "    options: {epochs: -1}\n", 6,
     "grids[0].options.epochs: a budget of -1 epochs trains nothing"),
    ("defaults: {steps: 0}\n", "", 2, "defaults.steps: a budget of 0 steps trains nothing"),
    ("defaults: {epochs: null, steps: null}\n", "", 2, "grids[0] has no training budget"),
])
def test_a_grid_without_a_positive_budget_names_its_line(tmp_path: Path, head: str,
                                                         grid_options: str, line: int,
                                                         phrase: str) -> None:
    path = write(tmp_path, 'version: "1"\n' + head + GRID + grid_options)
    message = error_of(path)
    assert message.startswith(f"{path}, line {line}: ") and phrase in message, message


def test_a_budget_in_steps_or_in_the_grid_is_enough(tmp_path: Path) -> None:
    steps = load_suite(write(tmp_path, 'version: "1"\ndefaults: {steps: 30}\n' + GRID))
    assert [c.config.steps for c in steps.cells()] == [30]
    own = load_suite(write(tmp_path, 'version: "1"\n' + GRID + "    options: {epochs: 3}\n",
                           "b.yaml"))
    assert [c.config.epochs for c in own.cells()] == [3]


@pytest.mark.parametrize("head, grid_options, line, asked", [
    ("defaults: {epochs: 1}\n", "    options: {grid: [250], d_min: 10}\n", 6, "d_min"),
    ("defaults: {epochs: 1, grid: [250], resolution: 0.1}\n", "", 2, "resolution"),
    ("defaults: {epochs: 1, grid: [250]}\n", "    options:\n      d_max: 900\n", 7, "d_max"),
])
def test_one_grid_point_with_a_search_asked_for_names_its_line(tmp_path: Path, head: str,
                                                               grid_options: str, line: int,
                                                               asked: str) -> None:
    path = write(tmp_path, 'version: "1"\n' + head + GRID + grid_options)
    message = error_of(path)
    assert message.startswith(f"{path}, line {line}: ")
    assert "grid [250] measures the score at one d" in message and f"but {asked} asks" in message


@pytest.mark.parametrize("head, grid_options", [
    ("defaults: {epochs: 1, d_min: 10, d_max: 900}\n", "    options: {grid: [250]}\n"),
    ("defaults: {epochs: 1}\n", "    options: {grid: [250, 500], d_min: 10}\n"),
    ("defaults: {epochs: 1, grid: [250]}\n", "    options: {grid: null, d_min: 10}\n"),
])
def test_a_search_range_a_single_d_grid_overrides_is_not_an_error(
        tmp_path: Path, head: str, grid_options: str) -> None:
    """Search options in the defaults serve the suite's other grids; a grid of its own that sets
    one d overrides them, and a grid of several d, or none, has a d_int to find."""
    cells = load_suite(write(tmp_path, 'version: "1"\n' + head + GRID + grid_options)).cells()
    assert len(cells) == 1 and cells[0].config.epochs == 1


def test_a_cell_key_is_not_an_option(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: "1"
        defaults: {model: fc}
        grids: [{models: [fc], datasets: [digits]}]
    """)
    message = error_of(path)
    assert "line 2:" in message and "'models'" in message


def test_missing_file_and_unknown_suite_name(tmp_path: Path) -> None:
    message = error_of(tmp_path / "nope.yaml")
    assert "no suite file" in message and "idbench ls suites" in message
    assert "Did you mean 'quickstart'?" in error_of("quickstar")


def test_invalid_yaml_gives_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, 'version: "1"\ngrids:\n  - models: [fc\n    datasets: [digits]\n')
    message = error_of(path)
    assert str(path) in message and "not valid YAML" in message and "line " in message


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string\n"])
def test_a_suite_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    message = error_of(write(tmp_path, text))
    assert "line 1:" in message and "mapping" in message


def test_missing_required_key(tmp_path: Path) -> None:
    message = error_of(write(tmp_path, 'version: "1"\ngrids:\n  - models: [fc]\n'))
    assert "line 3:" in message and "missing key 'datasets'" in message


def test_fashion_mnist_leaderboard_suites_hold_the_cells_issue_13_asks_for() -> None:
    """The flagship (fpd x four projections, kron and kron_sparse (issue 14), rbd on Fastfood with
    and without layer compartments), the budget suite (Fastfood at 1, 2, 5, 10 epochs, and 20 to
    check the plateau) and the FC family (depth x width)."""
    flagship = [c.config for c in load_suite("fashion-mnist-1epoch").cells()]
    assert {(str(c.model), str(c.projection), str(c.method), c.compartments) for c in flagship} == {
        (m, p, "fpd", None) for m in ("fc[depth=2,width=200]", "lenet")
        for p in ("dense", "sparse", "fastfood", "fastjl", "kron", "kron_sparse")
    } | {(m, "fastfood", "rbd", k) for m in ("fc[depth=2,width=200]", "lenet") for k in (None, "layer")}
    assert {(c.seeds, c.draws) for c in flagship} == {(1, 4)}
    assert {(str(c.method), c.tune_every_probe) for c in flagship} == {("fpd", False), ("rbd", True)}
    budget = [c.config for c in load_suite("fashion-mnist-budget").cells()]
    assert sorted((str(c.model), c.epochs) for c in budget) == sorted(
        (m, e) for m in ("fc[depth=2,width=200]", "lenet") for e in (1, 2, 5, 10, 20))
    assert {(str(c.projection), str(c.method), c.seeds) for c in budget} == {("fastfood", "fpd", 3)}
    family = [c.config for c in load_suite("fashion-mnist-fc-family").cells()]
    assert {str(c.model) for c in family} == {f"fc[depth={k},width={w}]" for k in (1, 2, 3)
                                         for w in (50, 100, 200, 400)}
    assert {(str(c.projection), c.seeds, c.draws) for c in family} == {("fastfood", 1, 4)}


def test_settled_flagship_tunes_rbd_at_every_probe_and_carries_fpd_rates() -> None:
    """rbd's carried rate decides its score more than d does, so its cells tune at every probe;
    fpd's cells keep the default carrying. Every cell is 4 draws at its settled budget."""
    cells = [c.config for c in load_suite("fashion-mnist-settled").cells()]
    assert len(cells) == 12
    assert {(str(c.method), c.tune_every_probe) for c in cells} == {("rbd", True), ("fpd", False)}
    assert sum(str(c.method) == "rbd" for c in cells) == 4
    assert {(str(c.model), c.epochs) for c in cells} == {("fc[depth=2,width=200]", 5), ("lenet", 2)}
    assert {c.draws for c in cells} == {4}


# --------------------------------------------------------------------------- the optimiser axis


def test_optimizers_is_a_grid_axis_and_labels_name_the_optimizer(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: "1"
        defaults: {optimizer: adam, epochs: 1}
        grids:
          - models: [fc]
            datasets: [digits]
            projections: [dense, fastfood]
            optimizers: [sgd, ngd]
          - models: [fc]
            datasets: [toy-sums]
    """)
    cells = load_suite(path).cells()
    assert [(str(c.config.dataset), str(c.config.projection), c.config.optimizer)
            for c in cells] == [
        ("digits", "dense", "sgd"), ("digits", "dense", "ngd"),
        ("digits", "fastfood", "sgd"), ("digits", "fastfood", "ngd"),
        ("toy-sums", "dense", "adam"),  # no list: the defaults' optimizer
    ]
    assert cells[1].label == "fc/digits/dense/fpd/ngd"
    assert len({c.label for c in cells}) == len(cells)


def test_a_suite_of_one_optimizer_keeps_its_labels_and_cells(tmp_path: Path) -> None:
    text = 'version: "1"\ndefaults: {optimizer: adam, epochs: 1}\ngrids: [{models: [fc], datasets: [digits]}]\n'
    listed = text.replace("datasets: [digits]", "datasets: [digits], optimizers: [adam]")
    plain, with_list = load_suite(write(tmp_path, text)), load_suite(write(tmp_path, listed, "b.yaml"))
    assert [c.label for c in plain.cells()] == ["fc/digits/dense/fpd"]
    assert [c.config for c in plain.cells()] == [c.config for c in with_list.cells()]


def test_an_unknown_optimizer_names_its_line_and_the_choices(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: "1"
        grids:
          - models: [fc]
            datasets: [digits]
            optimizers:
              - sgd
              - adamm
    """)
    message = error_of(path)
    assert "line 7:" in message and "unknown optimizer 'adamm'" in message
    assert "Did you mean 'adam'?" in message and "sgd, adam, lbfgs, ngd" in message


def test_optimizers_and_the_optimizer_option_of_one_grid_conflict(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: "1"
        grids:
          - models: [fc]
            datasets: [digits]
            optimizers: [sgd, adam]
            options: {optimizer: adam}
    """)
    message = error_of(path)
    assert "line 6:" in message and "keep one" in message


def test_an_optimizer_a_method_cannot_use_points_at_the_list(tmp_path: Path) -> None:
    path = write(tmp_path, """
        version: "1"
        defaults: {optimizer: sgd, epochs: 1}
        grids:
          - models: [fc]
            datasets: [digits]
            methods: [rbd]
            optimizers: [sgd, lbfgs]
    """)
    message = error_of(path)
    # a pair of method and optimiser is refused at the list that makes it
    assert "line 7: grids[0].optimizers: optimizer lbfgs trains z" in message


def test_the_optimiser_suite_holds_the_cells_issue_14_asks_for() -> None:
    """FC and LeNet under Fastfood (fpd), sgd / adam / ngd with ngd's damping tuned; its sgd cells
    are the short-budget flagship's Fastfood cells (same keys: the list makes the same cells as
    the option)."""
    cells = load_suite("fashion-mnist-optimisers").cells()
    configs = [c.config for c in cells]
    assert {(str(c.model), str(c.projection), str(c.method), c.optimizer) for c in configs} == {
        (m, "fastfood", "fpd", o) for m in ("fc[depth=2,width=200]", "lenet")
        for o in ("sgd", "adam", "ngd")}
    assert {(c.seeds, c.draws) for c in configs} == {(1, 4)}
    assert {c.damping_range for c in configs if c.optimizer == "ngd"} == {(0.001, 1.0)}
    assert {c.damping_range for c in configs if c.optimizer != "ngd"} == {None}
    assert all(c.label.endswith("/" + c.config.optimizer) for c in cells)
    flagship = {c.config.key() for c in load_suite("fashion-mnist-1epoch").cells()}
    assert {c.key() for c in configs if c.optimizer == "sgd"} <= flagship


def test_the_transfer_suite_holds_the_cells_issue_33_asks_for() -> None:
    """Both networks on both transfer tasks from init, from a pretrained model and (Fashion-MNIST
    classes 5-9) after three burn-ins, each without and with SAID, under SGD; on classes 5-9 from
    init and pretrained also under Adam (SAID's scalars share z's rate: Adam's per-coordinate
    steps keep them from diverging). Its checkpoints are the runs its documented `idbench
    pretrain` commands store."""
    from idbench.train import RunSpec

    cells = load_suite("fashion-mnist-transfer").cells()
    labels = [c.label for c in cells]
    assert len(cells) == 36 and len(set(labels)) == 36
    assert {(c.config.seeds, c.config.draws) for c in cells} == {(1, 4)}
    part_b = [c.config for c in cells if str(c.config.dataset) == "fashion-mnist-split[part=b]"]
    burn_ins = {str(c.theta0) for c in part_b if c.theta0.name == "burn-in"}
    assert len(burn_ins) == 3 and len(part_b) == 28
    assert sum(c.config.said for c in cells) == 18
    adam = {(str(c.model), c.theta0.name, c.said) for c in part_b if c.optimizer == "adam"}
    assert adam == {(m, t, s) for m in ("fc[depth=2,width=200]", "lenet")
                    for t in ("init", "checkpoint") for s in (False, True)}
    assert sum(c.optimizer == "adam" for c in part_b) == 8
    source = {"fashion-mnist-split[part=b]": "fashion-mnist-split[part=a]",
              "digits[size=28]": "fashion-mnist"}
    pretrained = [c.config for c in cells if c.config.theta0.name == "checkpoint"]
    assert len(pretrained) == 12
    for config in pretrained:
        spec = RunSpec(model=config.model, dataset=source[str(config.dataset)], seed=0, lr=0.05,
                       epochs=5)
        assert config.theta0.options["run"] == spec.key(), config.model
        assert f"# run {spec.key()}" in SHIPPED["fashion-mnist-transfer"].read_text()
