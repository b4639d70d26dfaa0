"""The ``idbench`` command: generated flags, names after the threshold, warnings, Ctrl-C, stored
reruns, leaderboards of any results folder, shipped suites."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

import idbench.cell
import idbench.measurement
import idbench.runner
from idbench.cli import main, quantity_name
from idbench.config import MeasureConfig
from idbench.store import RunStore

TINY = ["measure", "--model", "fc[depth=1,width=8]", "--dataset", "digits", "--seeds", "2",
        "--epochs", "1", "--tune-trials", "0", "--grid", "8,32"]


def invoke(argv: list[str], capfd) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of ``idbench argv``, run in this process."""
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    out, err = capfd.readouterr()
    return exit_.value.code, out, err


def option_lines(help_text: str) -> dict[str, str]:
    """``--flag -> its help`` from click's help page (help text may wrap onto further lines)."""
    options: dict[str, str] = {}
    flag = None
    for line in help_text.split("Options:", 1)[1].splitlines():
        stripped = line.strip()
        if stripped.startswith("--"):
            flag, _, rest = stripped.partition(" ")
            flag = flag.split("/")[0]
            # two spaces end the flag and its metavar; without them the help starts below
            options[flag] = rest.split("  ", 1)[1].strip() if "  " in rest else ""
        elif flag and stripped:
            options[flag] += " " + stripped
    return options


def test_every_measurement_option_is_a_flag_with_help_and_its_default(capfd):
    code, out, _ = invoke(["measure", "--help"], capfd)
    assert code == 0
    options = option_lines(out)
    for name, field in MeasureConfig.model_fields.items():
        flag = "--" + name.replace("_", "-")
        assert flag in options, flag
        assert options[flag].strip(), f"{flag} has no help"
        if not field.is_required() and field.get_default() not in (None, ()):
            assert "[default: " in options[flag], flag
    assert all(help_text.strip() for help_text in options.values())
    # the spec syntax survives (no markup eats the brackets)
    assert "fc[depth=2,width=200]" in out and "sparse[density=0.01]" in out


def test_flags_reach_the_config_and_unset_ones_keep_its_defaults(capfd, monkeypatch, tmp_path):
    seen = {}

    def fake_measure(config, **kwargs):
        seen["config"] = config
        raise KeyboardInterrupt  # stop here: what matters is the config the flags built

    monkeypatch.setattr(idbench.measurement, "measure", fake_measure)
    argv = ["measure", "--model", "fc[depth=1,width=8]", "--dataset", "digits", "--lr-range",
            "0.01,1", "--lr-scaling", "inverse-sqrt-d", "--d-ref", "64",
            "--tune-seeds", "3", "--momentum", "0.5", "--schedule", "constant", "--warmup", "0",
            "--patience", "4", "--val-fraction", "0.2", "--grid", "8,16", "--tune-every-probe",
            "--compartments", "layer", "--out", str(tmp_path / "o")]
    code, _, _ = invoke(argv, capfd)
    assert code == 130
    config = seen["config"]
    assert config.lr_range == (0.01, 1.0) and config.lr_scaling == "inverse-sqrt-d"
    assert config.d_ref == 64 and config.tune_seeds == 3
    assert config.momentum == 0.5 and config.schedule == "constant" and config.warmup == 0
    assert config.patience == 4 and config.val_fraction == 0.2 and config.grid == (8, 16)
    assert config.tune_every_probe is True and config.compartments == "layer"
    defaults = MeasureConfig(model="fc[depth=1,width=8]", dataset="digits")
    given = {"model", "dataset", "lr_range", "lr_scaling", "d_ref", "tune_seeds",
             "momentum", "schedule", "warmup", "patience", "val_fraction", "grid",
             "tune_every_probe", "compartments"}
    for name in MeasureConfig.model_fields.keys() - given:
        assert getattr(config, name) == getattr(defaults, name), name


@pytest.mark.parametrize("threshold, name", [(0.9, "d_int90"), (0.5, "d_int50"),
                                             (0.99, "d_int99"), (1.0, "d_int100")])
def test_the_quantity_is_named_after_its_threshold(threshold, name):
    assert quantity_name(threshold) == name


def test_a_measurement_end_to_end_then_its_stored_rerun_and_leaderboard(tmp_path):
    """JSON key after the threshold, the d_max warning once on one line, the rerun reads the
    stored row without importing torch, and `idbench leaderboard` renders the --out folder."""
    out = tmp_path / "out"
    bisect = [a for a in TINY if a not in ("--grid", "8,32")] + ["--d-min", "8"]  # to d_max
    argv = [*bisect, "--threshold", "0.5", "--out", str(out), "--json"]
    first = subprocess.run([sys.executable, "-m", "idbench.cli", *argv], capture_output=True,
                           text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert "d_int50" in result and "d_int90" not in result and result["D"] == 610
    warning = [line for line in first.stderr.splitlines() if "exceeds D" in line]
    assert warning == ["idbench: warning: d_max = 100000 exceeds D = 610: searching up to D "
                       "instead"]
    assert "warnings.warn" not in first.stderr and "UserWarning" not in first.stderr

    probe = ("import sys, atexit; atexit.register(lambda: print('torch' in sys.modules, "
             "file=sys.stderr)); from idbench.cli import main; main(sys.argv[1:])")
    rerun = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True,
                           timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout) == result
    assert rerun.stderr.strip() == "False"  # nothing trained, torch never imported

    board = subprocess.run([sys.executable, "-m", "idbench.cli", "leaderboard", str(out)],
                           capture_output=True, text=True, timeout=120)
    assert board.returncode == 0, board.stderr
    assert "d_int50" in board.stdout and "fc[depth=1,width=8]" in board.stdout


def test_ctrl_c_in_an_optuna_trial_is_one_line_with_the_command_to_continue(tmp_path, capfd,
                                                                            monkeypatch):
    trained = []
    real_run = idbench.cell.run

    def run_then_interrupt(*args, **kwargs):
        if trained:
            raise KeyboardInterrupt  # the second tuning run, inside an Optuna trial
        trained.append(1)
        return real_run(*args, **kwargs)

    monkeypatch.setattr(idbench.cell, "run", run_then_interrupt)
    out = tmp_path / "out"
    argv = [*TINY[:-4], "--tune-trials", "2", "--tune-seeds", "1", "--grid", "8",
            "--out", str(out)]
    code, stdout, err = invoke(argv, capfd)
    assert code == 130 and stdout == ""
    assert "Traceback" not in err and "Trial" not in err, err  # nor Optuna's failure log
    last = err.splitlines()[-1]  # (above it: the progress lines of a non-terminal stderr)
    assert sum("interrupted" in line for line in err.splitlines()) == 1
    assert last == (f"idbench: interrupted: 1 finished run stored in {out}; continue with: "
                    + shlex.join(["idbench", *argv]))
    assert RunStore(out).table().height == 1
    monkeypatch.setattr(idbench.cell, "run", real_run)  # continuing reuses the stored run
    code, _, err = invoke(argv, capfd)
    assert code == 0, err
    assert RunStore(out).get_measurement(MeasureConfig(
        model="fc[depth=1,width=8]", dataset="digits", draws=1, seeds=2, epochs=1, tune_trials=2,
        tune_seeds=1, grid=(8,)).key()) is not None


def test_ctrl_c_in_a_suite_says_to_resume(tmp_path, capfd, monkeypatch):
    suite = tmp_path / "tiny.yaml"
    suite.write_text('name: tiny\nversion: "1"\ndefaults: {draws: 1, seeds: 1, epochs: 1, tune_trials: 0, '
                     'grid: [8]}\ngrids:\n  - models: ["fc[depth=1,width=8]"]\n'
                     '    datasets: [digits]\n')

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(idbench.runner, "measure", interrupted)
    argv = ["run", str(suite), "--out", str(tmp_path / "out"), "--leaderboard",
            str(tmp_path / "lb")]
    code, _, err = invoke(argv, capfd)
    assert code == 130 and "Traceback" not in err
    assert err.splitlines()[-1] == ("idbench: interrupted: no finished run stored yet; continue "
                                    "with: " + shlex.join(["idbench", *argv, "--resume"]))


def test_shipped_suites_are_package_data():
    import idbench.suites

    folder = Path(idbench.suites.__file__).parent / "_suites"
    assert idbench.suites.SUITES_DIR == folder.resolve()
    assert "quickstart" in idbench.suites.shipped_suites()
    pyproject = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert '"_suites/*.yaml"' in pyproject  # installed with the package, not only in a checkout
    link = Path(__file__).parents[1] / "suites"  # `idbench run suites/quickstart.yaml` still works
    assert (link / "quickstart.yaml").resolve() == (folder / "quickstart.yaml").resolve()


def test_idbench_alone_prints_its_help(capfd):
    code, out, err = invoke([], capfd)
    assert code == 0 and err == ""
    assert out.startswith("Usage: idbench") and "measure" in out and "leaderboard" in out


@pytest.mark.parametrize("kind, module", [("models", "idbench.models"),
                                          ("datasets", "idbench.data"),
                                          ("projections", "idbench.projections"),
                                          ("methods", "idbench.methods")])
def test_ls_shows_every_entry_with_its_summary_and_every_option_of_its_factory(kind, module,
                                                                               capfd):
    """What `idbench ls` shows comes from the registry: each factory's own signature, so an option
    added to a factory is listed without anyone editing a list."""
    import importlib
    import inspect

    registry = next(v for v in vars(importlib.import_module(module)).values()
                    if type(v).__name__ == "Registry")
    code, out, err = invoke(["ls", kind], capfd)
    assert code == 0 and err == ""
    blocks = {}
    for line in out.splitlines():
        if line.startswith("    options: "):
            blocks[name] += line
        else:
            name = line.split("  ")[0]
            blocks[name] = line
    assert sorted(blocks) == registry.list()
    for name, block in blocks.items():
        entry = registry.describe(name)
        assert entry.summary and block.startswith(f"{name}  {entry.summary}")
        factory = registry.resolve(name if not name.endswith(":") else name + "x")[0]
        taken = [p for p in inspect.signature(factory).parameters.values()
                 if p.name not in registry.context and p.kind is p.KEYWORD_ONLY]
        for parameter in taken:
            assert f"{parameter.name}: " in block, (name, parameter.name)
        assert ("options: " in block) == bool(taken or entry.takes_more)


def test_ls_names_types_and_defaults_as_a_spec_writes_them(capfd):
    code, out, _ = invoke(["ls", "projections", "sparse"], capfd)
    assert code == 0
    assert out.splitlines()[1] == "    options: density: float | None = none"
    code, out, _ = invoke(["ls", "methods", "nes"], capfd)
    assert "sigma: float = 0.01" in out and "grad_cosine: bool = false" in out
    code, out, err = invoke(["ls", "models", "zzz*"], capfd)
    assert code == 2 and out == ""
    assert err == "idbench: error: no models match 'zzz*'; `idbench ls models` lists them all\n"
