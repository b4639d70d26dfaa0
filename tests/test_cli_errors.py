"""Bad input on the command line: one line on stderr, exit status 2, no traceback, nothing written.

A table of mistakes a new user makes with ``idbench measure``, ``run``, ``leaderboard`` and ``ls``,
each run in this process through :func:`idbench.cli.main` (as the console script runs it). Every
case asserts the same four properties; the output folder named in the command (``{out}``) must be
exactly as it was before (here: absent), so the checks ran before anything was written or trained.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

import idbench.models
from idbench.cli import main

MEASURE = ["measure", "--model", "fc[depth=1,width=8]", "--dataset", "digits", "--seeds", "1",
           "--epochs", "1", "--tune-trials", "0", "--out", "{out}"]
TINY = """
name: tiny
version: "1"
defaults: {draws: 1, seeds: 1, epochs: 1, d_min: 8, d_max: 64, tune_trials: 0}
grids:
  - models: ["fc[depth=1,width=8]"]
    datasets: [digits]
"""
NO_GPU_DEVICE = "cuda" if not torch.cuda.is_available() else f"cuda:{torch.cuda.device_count()}"

# (case id, argv, a phrase the one line must contain); {out}, {file}, {suite}, {tmp} are filled in
CASES = [
    # measure: components and their options
    ("misspelt projection", [*MEASURE, "--projection", "fastfod"], "Did you mean 'fastfood'"),
    ("misspelt method", [*MEASURE, "--method", "fdp"], "unknown method 'fdp'"),
    ("unknown model", [*MEASURE, "--model", "fcc"], "unknown model 'fcc'"),
    ("unknown dataset", [*MEASURE, "--dataset", "digitz"], "unknown dataset 'digitz'"),
    ("misspelt projection option", [*MEASURE, "--projection", "sparse[densty=0.1]"], "densty"),
    ("misspelt model option", [*MEASURE, "--model", "fc[depht=2]"], "depht"),
    ("unparsable spec", [*MEASURE, "--model", "fc[depth]"], "key=value"),
    ("lbfgs with rbd", [*MEASURE, "--optimizer", "lbfgs", "--method", "rbd"], "lbfgs"),
    # measure: rates, budgets and ranges
    ("negative lr", [*MEASURE, "--lr", "-0.1"], "lr"),
    ("zero subspace lr", [*MEASURE, "--lr-subspace", "0"], "--lr-subspace"),
    ("zero steps", [*MEASURE, "--steps", "0"], "steps"),
    ("zero epochs", [*MEASURE, "--epochs", "0"], "positive budget"),
    ("zero seeds", [*MEASURE, "--seeds", "0"], "--seeds: Input should be greater than or equal to 1"),
    ("seeds not a number", [*MEASURE, "--seeds", "abc"], "seeds"),
    ("zero batch size", [*MEASURE, "--batch-size", "0"], "--batch-size"),
    ("warm-up of the whole budget", [*MEASURE, "--warmup", "1"], "warmup"),
    ("threshold above 1", [*MEASURE, "--threshold", "1.5"], "threshold"),
    ("global baseline above 1", [*MEASURE, "--baseline", "global:2"], "baseline"),
    ("d_min above d_max", [*MEASURE, "--d-min", "100", "--d-max", "10"],
     "--d-min (100) is larger than --d-max (10)"),
    ("a search range of one d", [*MEASURE, "--d-min", "64", "--d-max", "64"],
     "--d-min = --d-max = 64 leaves the search one d"),
    ("d_min above D", [*MEASURE, "--d-min", "100000", "--d-max", "200000"], "exceeds the model's D"),
    ("grid value above D", [*MEASURE, "--grid", "8,100000"], "exceeds the model's D"),
    ("grid not numbers", [*MEASURE, "--grid", "8,x"], "--grid: value 2 ('x'): Input should be a valid integer"),
    ("d_min zero", [*MEASURE, "--d-min", "0"], "--d-min: Input should be greater than or equal to 1"),
    ("grid value zero", [*MEASURE, "--grid", "0,8"], "grid must be a non-empty list of positive"),
    ("d_min above a compartment", [*MEASURE, "--compartments", "4", "--d-min", "200", "--d-max",
                                   "300"], "d = 200 exceeds the 152 parameters of each of the 4"),
    ("resolution of 2", [*MEASURE, "--resolution", "2"], "resolution"),
    ("lr range of one number", [*MEASURE, "--lr-range", "1"], "--lr-range: takes two values, LOW,HIGH; got 1"),
    ("lr range of three numbers", [*MEASURE, "--lr-range", "1,2,3"], "takes two values, LOW,HIGH; got 3"),
    ("unknown optimizer", [*MEASURE, "--optimizer", "newton"], "unknown --optimizer 'newton'"),
    ("unknown schedule", [*MEASURE, "--schedule", "linear"], "unknown --schedule 'linear'"),
    ("unknown lr scaling", [*MEASURE, "--lr-scaling", "sqrt"], "unknown --lr-scaling 'sqrt'"),
    ("lr range reversed", [*MEASURE, "--lr-range", "10,1"], "--lr-range must be (low, high) with 0 < low < high"),
    ("compartments not a number", [*MEASURE, "--compartments", "many"],
     "--compartments: give a positive integer K (K equal compartments) or 'layer' (one per "
     "layer), got 'many'"),
    ("zero compartments", [*MEASURE, "--compartments", "0"], "got '0'"),
    ("more compartments than parameters", [*MEASURE, "--compartments", "700"],
     "compartments = 700 is more than the 610 parameters"),
    ("lr NaN", [*MEASURE, "--lr", "nan"], "--lr: NaN is not a finite number; give a finite value"),
    ("momentum NaN", [*MEASURE, "--momentum", "nan"], "--momentum: NaN is not a finite number"),
    ("epochs NaN", [*MEASURE, "--epochs", "nan"], "--epochs: NaN is not a finite number"),
    ("epochs infinite", [*MEASURE, "--epochs", "inf"], "--epochs: infinity is not a finite number"),
    ("lr range not numbers", [*MEASURE, "--lr-range", "abc"],
     "--lr-range: value 1 ('abc'): Input should be a valid number"),
    # measure: a component option's value (a range, a type, NaN)
    ("sparse density 2", [*MEASURE, "--projection", "sparse[density=2]"],
     "sparse density must be in (0, 1], got 2"),
    ("sparse density not a number", [*MEASURE, "--projection", "sparse[density=abc]"],
     "projection 'sparse': option density='abc' is not of its type float | None"),
    ("sparse density infinite", [*MEASURE, "--projection", "sparse[density=1e999]"],
     "option density=inf is not a finite number"),
    ("nes sigma negative", [*MEASURE, "--method", "nes[sigma=-1]"], "nes sigma must be"),
    # measure: re-measurement and the threshold
    ("replicate -1", [*MEASURE, "--replicate", "-1"], "--replicate"),
    ("draws 0", [*MEASURE, "--draws", "0"], "--draws: Input should be greater than or equal to 1"),
    ("replicate with fixed rates", [*MEASURE, "--replicate", "1", "--tune-every-probe",
                                    "--tune-trials", "0", "--lr", "0.1"],
     "replicate 1 redraws the tuner, but --tune-trials 0 fixes every rate"),
    ("global baseline at chance", [*MEASURE, "--baseline", "global:0.1"],
     "at or below chance (1/10 = 0.1) on digits"),
    # measure: theta0 and SAID (idbench.theta0, idbench.subspace)
    ("missing checkpoint", [*MEASURE, "--theta0", "checkpoint[path={tmp}/none.pt]"],
     "theta0 checkpoint {tmp}/none.pt does not exist"),
    ("checkpoint of another model", [*MEASURE, "--theta0", "checkpoint[path={tmp}/w4.pt]"],
     "does not match the model: hidden.0.weight (4, 64) vs model (8, 64); hidden.0.bias (4,)"),
    ("stored run without its checkpoint", [*MEASURE, "--theta0", "checkpoint[run=abc,store={tmp}]"],
     "checkpoints/abc.pt does not exist"),
    ("burn-in beyond the budget", [*MEASURE, "--theta0", "burn-in[steps=12,lr=0.1]"],
     "a burn-in of 12 steps is longer than the run's budget of 11 steps"),
    ("burn-in without a rate", [*MEASURE, "--theta0", "burn-in[epochs=0.5]"], "lr=L"),
    ("said with rbd", [*MEASURE, "--said", "--method", "rbd"], "method rbd takes its own steps"),
    ("said with nes", [*MEASURE, "--said", "--method", "nes"], "method nes takes its own steps"),
    ("said with K compartments", [*MEASURE, "--said", "--compartments", "2"], "said counts"),
    ("said with d below its scalars", [*MEASURE, "--said", "--d-min", "1"],
     "d = 1 is fewer than the 2 per-layer scalars"),
    ("pretrain of an unknown model", ["pretrain", "--model", "fcc", "--dataset", "digits", "--lr",
                                      "0.1", "--out", "{out}"], "unknown model 'fcc'"),
    ("pretrain from a missing checkpoint", ["pretrain", "--model", "fc", "--dataset", "digits",
                                            "--lr", "0.1", "--theta0", "checkpoint[path=x.pt]",
                                            "--out", "{out}"], "x.pt does not exist"),
    # measure: device, paths, flags
    ("device tpu", [*MEASURE, "--device", "tpu"], "unknown device 'tpu'"),
    ("cuda without that GPU", [*MEASURE, "--device", NO_GPU_DEVICE], "--device cuda"),
    ("out under a file", [*MEASURE[:-1], "{file}/out"], "is a file"),
    ("storage under a file", [*MEASURE, "--storage", "{file}/journal.log"], "is a file"),
    ("sqlite storage in a missing folder", [*MEASURE, "--storage", "sqlite:///{tmp}/no/db.sqlite"],
     "the folder {tmp}/no does not exist (SQLite does not create it)"),
    ("unknown flag", [*MEASURE, "--epoch", "3"], "No such option: --epoch"),
    ("missing model", ["measure", "--dataset", "digits", "--out", "{out}"], "--model"),
    # run
    ("missing suite file", ["run", "{tmp}/missing.yaml", "--out", "{out}"], "no suite file"),
    ("misspelt suite name", ["run", "quickstar", "--out", "{out}"], "Did you mean 'quickstart'"),
    ("suite with a misspelt key", ["run", "{tmp}/bad.yaml", "--out", "{out}"], "line"),
    ("suite with epochs NaN", ["run", "{tmp}/nan.yaml", "--out", "{out}"],
     "line 4: defaults.epochs: NaN is not a finite number"),
    ("suite without a budget", ["run", "{tmp}/nobudget.yaml", "--out", "{out}"],
     "nobudget.yaml, line 6: grids[0] has no training budget"),
    ("suite with zero epochs", ["run", "{tmp}/zero.yaml", "--out", "{out}"],
     "zero.yaml, line 4: defaults.epochs: a budget of 0 epochs trains nothing"),
    ("single-d grid with a search", ["run", "{tmp}/single.yaml", "--out", "{out}"],
     "single.yaml, line 4: defaults.d_min: grid [16] measures the score at one d"),
    ("only matching no cell", ["run", "{suite}", "--only", "*lenet*", "--out", "{out}"],
     "matches no cell"),
    ("run on device tpu", ["run", "{suite}", "--device", "tpu", "--out", "{out}"], "tpu"),
    ("leaderboard under a file", ["run", "{suite}", "--leaderboard", "{file}/lb", "--out", "{out}"],
     "--leaderboard"),
    ("unknown executor", ["run", "{suite}", "--executor", "nosuch", "--out", "{out}"],
     "unknown executor 'nosuch'"),
    ("workers without dask", ["run", "{suite}", "--workers", "2", "--out", "{out}"], "--workers"),
    # leaderboard
    ("leaderboard of a missing folder", ["leaderboard", "{out}"], "does not exist"),
    ("leaderboard of an empty folder", ["leaderboard", "{tmp}"], "not found"),
    ("plot format xyz", ["leaderboard", "{tmp}", "--plot", "{out}.xyz"], "'xyz'"),
    ("plot under a file", ["leaderboard", "{tmp}", "--plot", "{file}/plot.png"], "is a file"),
    # ls and the command itself
    ("ls of an unknown kind", ["ls", "modles"], "cannot list 'modles'"),
    ("ls without a kind", ["ls"], "Missing argument"),
    ("ls with an extra argument", ["ls", "models", "a", "b"], "unexpected extra argument"),
    ("ls of a pattern matching nothing", ["ls", "models", "zzz*"], "no models match 'zzz*'"),
    ("unknown command", ["mesure"], "No such command 'mesure'"),
]


@pytest.fixture
def places(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "a-file").write_text("not a folder\n")
    (tmp_path / "tiny.yaml").write_text(TINY)
    (tmp_path / "bad.yaml").write_text(TINY.replace("epochs: 1", "epoch: 1"))
    (tmp_path / "nan.yaml").write_text(TINY.replace("epochs: 1", "epochs: .nan"))
    (tmp_path / "nobudget.yaml").write_text(TINY.replace("epochs: 1, ", ""))
    (tmp_path / "zero.yaml").write_text(TINY.replace("epochs: 1", "epochs: 0"))
    (tmp_path / "single.yaml").write_text(TINY.replace("tune_trials: 0}", "tune_trials: 0, "
                                                       "grid: [16]}"))
    torch.save(idbench.models.create("fc[depth=1,width=4]", input_shape=(1, 8, 8),
                                     num_classes=10).state_dict(), tmp_path / "w4.pt")
    return {"out": str(tmp_path / "out"), "file": str(tmp_path / "a-file"),
            "suite": str(tmp_path / "tiny.yaml"), "tmp": str(tmp_path)}


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else b""
            for p in sorted(root.rglob("*"))}


def test_the_battery_has_at_least_30_cases_over_every_command():
    assert len(CASES) >= 30 and len({case[0] for case in CASES}) == len(CASES)
    assert {case[1][0] for case in CASES} >= {"measure", "run", "leaderboard", "ls"}


@pytest.mark.parametrize("argv, phrase", [case[1:] for case in CASES],
                         ids=[case[0] for case in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(argv, phrase, places, tmp_path, capfd,
                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)  # run's default idbench-out/<suite> would land here
    argv = [arg.format(**places) for arg in argv]
    phrase = phrase.format(**places)
    before = tree(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    out, err = capfd.readouterr()
    assert exit_.value.code == 2, err
    assert err.startswith("idbench: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and phrase in err, err
    assert tree(tmp_path) == before  # nothing new, nothing changed: --out stays as it was
    assert out == ""


def test_the_console_script_gives_the_same_one_line(tmp_path):
    """The same properties through a real process (the entry point, not main())."""
    done = subprocess.run([sys.executable, "-m", "idbench.cli", *MEASURE[:-1], str(tmp_path / "o"),
                           "--device", "tpu"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("idbench: error: unknown device 'tpu'")
    assert done.stderr.count("\n") == 1 and not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv, line", [
    (["--lr-range", "abc"], "bad measurement options: --lr-range: value 1 ('abc'): Input should be "
     "a valid number, unable to parse string as a number"),
    (["--compartments", "foo"], "bad measurement options: --compartments: give a positive integer "
     "K (K equal compartments) or 'layer' (one per layer), got 'foo'"),
])
def test_one_problem_per_option(argv, line, places, capfd):
    """An option that fails two ways (a union type, a range of two values) is one message."""
    with pytest.raises(SystemExit):
        main([arg.format(**places) for arg in MEASURE] + argv)
    assert capfd.readouterr().err == f"idbench: error: {line}\n"


def test_a_database_url_without_its_driver_names_the_package(places, capfd, monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if not installed
    with pytest.raises(SystemExit) as exit_:
        main([arg.format(**places) for arg in MEASURE] + ["--storage", "postgresql://u@h/db"])
    err = capfd.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1
    assert "the Python module psycopg, is not installed: pip install 'psycopg[binary]'" in err
    assert not Path(places["out"]).exists()


def bad_values(option) -> list:
    """A value of the wrong type for every option (text where a number or a flag is expected; for
    text options, a choice that does not exist), and -1 for numbers (out of every option's
    range, except a seed's: any integer seeds a generator)."""
    numeric = "int" in option.type or "float" in option.type
    return ["zzz"] + ([-1] if numeric and "seed" not in option.name else [])


@pytest.mark.parametrize("kind, module", [("model", "idbench.models"), ("dataset", "idbench.data"),
                                          ("projection", "idbench.projections"),
                                          ("method", "idbench.methods")])
def test_every_option_of_every_component_is_checked_before_anything_is_written(
        kind, module, places, tmp_path, capfd, monkeypatch):
    """Walks every option of every registered component (from its factory's signature, as
    `idbench ls` shows it) with bad values: each is one line naming the option, exit 2, before
    any folder is created. (A prefix family such as timm: passes options on to its library.)"""
    import importlib

    registry = next(v for v in vars(importlib.import_module(module)).values()
                    if type(v).__name__ == "Registry")
    monkeypatch.chdir(tmp_path)
    before = tree(tmp_path)
    walked = 0
    for name in registry.list():
        for option in [] if name.endswith(":") else registry.describe(name).options:
            for value in bad_values(option):
                argv = [arg.format(**places) for arg in MEASURE] + [
                    f"--{kind}", f"{name}[{option.name}={value}]"]
                with pytest.raises(SystemExit) as exit_:
                    main(argv)
                out, err = capfd.readouterr()
                assert exit_.value.code == 2 and out == "", (argv, err)
                assert err.startswith("idbench: error: ") and err.count("\n") == 1, err
                assert option.name in err, err
                assert tree(tmp_path) == before, argv
                walked += 1
    assert walked >= {"model": 6, "dataset": 15, "projection": 6, "method": 6}[kind]
