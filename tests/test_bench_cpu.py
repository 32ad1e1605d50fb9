"""benchmarks/bench_cpu.py keeps working: its --quick mode runs end to end, as on a fresh
clone without PyTorch, and every contender of every case computes what it should.

Nothing here times anything: speed is for `make bench` to print, not for tests to assert.
"""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

pytestmark = pytest.mark.slow  # about 5 s in all


def load(name: str):
    """Import benchmarks/<name>.py (benchmarks/ is a folder of scripts, not a package)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))  # bench_cpu imports cpu_cases as a sibling
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quick_run_without_torch_prints_the_table_and_writes_json(tmp_path, monkeypatch, capsys):
    bench = load("bench_cpu")
    monkeypatch.setattr(bench, "import_torch", lambda threads: None)  # as if not installed
    out = tmp_path / "bench.json"
    assert bench.main(["--quick", "--out", str(out)]) == 0

    printed = capsys.readouterr().out
    assert "not installed" in printed and "mg/numpy" in printed
    result = json.loads(out.read_text())
    assert result["quick"] is True and result["versions"]["torch"] is None
    assert result["machine"]["blas_threads"] >= 1
    cases = {(c["group"], c["case"]): c for c in result["cases"]}
    groups = {group for group, _ in cases}
    assert {"MLP step", "digits demo", "SGD momentum step", "Adam step", "AdamW step"} <= groups
    assert ("engine", "tiny graph") in cases and ("engine", "1,000-op chain") in cases
    assert {"LeNet-5 step", "tiny GPT step"} <= groups
    for case in result["cases"]:
        assert case["times"]["torch"] is None and case["ratios"]["minigrad/torch"] is None
        floors = ("numpy",) if case["group"] not in ("LeNet-5 step", "tiny GPT step") else ()
        for name in ("minigrad", *floors):
            assert case["times"][name]["median"] > 0 and case["times"][name]["runs"] >= 2
        if floors:
            assert case["ratios"]["minigrad/numpy"] > 0
        if not floors:  # the model cases have no hand-written NumPy version
            assert case["times"]["numpy"] is None and case["ratios"]["minigrad/numpy"] is None
        assert f"{case['group']}, {case['case']}" in printed
    digits = cases[("digits demo", "2 epochs")]["test_accuracy"]
    assert digits["minigrad"] > 0.8 and digits["numpy"] > 0.8


def test_the_results_go_outside_tracked_files_unless_asked(tmp_path, monkeypatch):
    """Issue 12: `make bench` overwrote the tracked benchmarks/results/bench_cpu.json."""
    bench = load("bench_cpu")
    written = []
    monkeypatch.setattr(bench, "plan", lambda quick, torch: [])  # no cases: only the file
    monkeypatch.setattr(bench, "RUNS", tmp_path / "runs")
    monkeypatch.setattr(bench, "RESULTS", tmp_path / "results")
    original = Path.write_text

    def spy(self, text, *args, **kwargs):
        written.append(self)
        return original(self, text, *args, **kwargs)

    monkeypatch.setattr(Path, "write_text", spy)
    assert bench.main([]) == 0
    assert written == [tmp_path / "runs" / "bench_cpu.json"]
    assert bench.main(["--save-results"]) == 0
    assert written[-1] == tmp_path / "results" / "bench_cpu.json"
    real = load("bench_cpu")
    assert real.RUNS == BENCHMARKS.parent / "runs"  # ignored by git (.gitignore: runs/)
    with pytest.raises(SystemExit):
        bench.main(["--save-results", "--out", str(tmp_path / "x.json")])


@pytest.mark.parametrize("optimizer", ["SGD momentum", "Adam", "AdamW"])
def test_the_numpy_floor_of_an_optimizer_step_is_the_same_computation(optimizer):
    """The hand-written update makes minigrad's exact operations: equal to the last bit."""
    cases = load("cpu_cases")
    contenders = cases.optimizer_step(None, optimizer, [(300, 200), (300,), (70000,)])
    for _ in range(3):
        for name in ("minigrad", "numpy"):
            contenders[name].before()
            contenders[name].run()
    mine, floor = contenders["minigrad"].result(), contenders["numpy"].result()
    for p, q in zip(mine, floor):
        np.testing.assert_array_equal(p.data, q)


def test_every_torch_contender_runs_and_agrees():
    torch = pytest.importorskip("torch")
    bench = load("bench_cpu")
    for group, _, build in bench.plan(quick=True, torch=torch):
        contenders = build()
        for c in filter(None, contenders.values()):  # the model cases have no NumPy floor
            if c.before:
                c.before()
            c.run()
        if group == "AdamW step":  # one step from the same start: the same parameters
            mine = contenders["minigrad"].result()
            theirs = contenders["torch"].result()
            for p, t in zip(mine, theirs):
                np.testing.assert_allclose(p.data, t.detach().numpy(), rtol=1e-5, atol=1e-6)
        if group == "digits demo":
            assert contenders["torch"].result() > 0.8
        if group in ("LeNet-5 step", "tiny GPT step"):  # same weights and batch: same loss
            np.testing.assert_allclose(
                contenders["minigrad"].result(), contenders["torch"].result(), rtol=1e-4
            )


@pytest.mark.parametrize("case", ["lenet_step", "gpt_step"])
def test_a_model_case_keeps_no_graph_between_steps(case):
    """Keeping each step's loss tensor kept its whole graph (every activation) alive: the
    heap grew every step and minigrad's times included page faults PyTorch never paid."""
    import gc

    import minigrad as mg

    load("bench_cpu")  # puts benchmarks/ on the path for model_cases' sibling imports
    model_cases = load("model_cases")
    contender = getattr(model_cases, case)(None)["minigrad"]
    for _ in range(3):
        contender.run()
    gc.collect()
    alive = [o for o in gc.get_objects() if isinstance(o, mg.Tensor) and o._parents]
    assert alive == [], f"{len(alive)} tensors of a recorded graph are still alive"
    assert len(contender.result()) == 3
