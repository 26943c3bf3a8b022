"""check-impl against code that attacks the checker (issue 11, items 2 and 3).

The attacks at call time are in tests/student_hostile.py; those at import time are
written into temporary files here (importing them into the test process would
end it, hang it or patch its NumPy).  Each must give its own verdict and exit
status, through the command line (``main([...])`` in this process, the function in
a child) and through the API (``"FILE.py:FUNCTION"`` and a callable, which runs in
a forked child on Linux).
"""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import student_conv
import student_hostile as hostile
import student_pool

from symbackprop import AvgPool2d, Conv2d, ImplementationError, MaxPool2d, check_impl
from symbackprop.check import impl_process
from symbackprop.check.impl import _judge_case, _prepare_case
from symbackprop.check.impl_process import FORKS
from symbackprop.cli import main

HOSTILE_FILE = str(Path(hostile.__file__))
LAYER = Conv2d(kernel_size=3, stride=2, padding=1)
ARGUMENTS = ["conv2d", "--kernel", "3", "--stride", "2", "--padding", "1"]
needs_fork = pytest.mark.skipif(not FORKS, reason="callables run in a forked child on Linux only")


def _cli(spec, capsys, *options):
    status = main(["check-impl", spec, *ARGUMENTS, *options])
    out, err = capsys.readouterr()
    return status, out, err


def _refused(status, out, err, *fragments):
    assert status == 2, out + err
    assert not out and err.startswith("symbackprop check-impl: error: ")
    assert len(err.strip().splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err


def _student_file(tmp_path, body, name="attack.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(body) + textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(HOSTILE_FILE).parent)!r})
        from student_conv import backward, backward_kernel_not_rotated as wrong
    """))
    return str(path)


# -- ending the process, endless loops ------------------------------------------------------
def test_os_exit_in_the_function(capsys):
    status, out, err = _cli(f"{HOSTILE_FILE}:exits_zero", capsys)
    _refused(status, out, err, "exits_zero ended its process without returning (exit status 0) "
             "on input 3x5, batch 2", "os._exit")


def test_sys_exit_in_the_function(capsys):
    status, out, err = _cli(f"{HOSTILE_FILE}:sys_exit_zero", capsys)
    _refused(status, out, err, "sys_exit_zero raised SystemExit: 0 (line", "on input 3x5")


def test_crash_in_the_function(capsys):
    status, out, err = _cli(f"{HOSTILE_FILE}:crashes", capsys)
    _refused(status, out, err, "crashes ended its process without returning (killed by SIGSEGV) "
             "on input 3x5")


def test_os_exit_at_import(tmp_path, capsys):
    spec = _student_file(tmp_path, "import os\nos._exit(0)\n") + ":backward"
    status, out, err = _cli(spec, capsys)
    _refused(status, out, err, "attack.py ended its process (exit status 0) before the function "
             "could be called")


def test_sys_exit_at_import(tmp_path, capsys):
    spec = _student_file(tmp_path, "import sys\nsys.exit(0)\n") + ":backward"
    status, out, err = _cli(spec, capsys)
    _refused(status, out, err, "attack.py: importing it raised SystemExit: 0 (line 2 of "
             "attack.py: sys.exit(0))")


def test_endless_loop_at_import(tmp_path, capsys):
    spec = _student_file(tmp_path, "while True:\n    pass\n") + ":backward"
    start = time.monotonic()
    status, out, err = _cli(spec, capsys, "--timeout", "2")
    assert time.monotonic() - start < 30
    _refused(status, out, err, "attack.py did not finish within 2 s (an endless loop when the "
             "file is imported?)", "--timeout SECONDS")


def test_endless_loop_in_the_function(capsys):
    start = time.monotonic()
    status, out, err = _cli(f"{HOSTILE_FILE}:endless", capsys, "--timeout", "2")
    assert time.monotonic() - start < 30
    _refused(status, out, err, "endless did not return within 2 s on input 3x5, batch 2 (an "
             "endless loop?)", "--timeout SECONDS")


def test_endless_loop_names_the_case_it_was_in(capsys):
    # right on 3x5; the second input size, 5x3, never returns
    status, out, err = _cli(f"{HOSTILE_FILE}:second_call_endless", capsys, "--timeout", "2")
    _refused(status, out, err, "did not return within 2 s on input 5x3, batch 2")


def _state(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None  # gone


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_timeout_kills_what_the_function_started(tmp_path, capsys):
    spec = _student_file(tmp_path, f"""
        import subprocess
        sleeper = subprocess.Popen(["sleep", "300"])
        open({str(tmp_path / "pid")!r}, "w").write(str(sleeper.pid))
        while True:
            pass
    """) + ":backward"
    status, out, err = _cli(spec, capsys, "--timeout", "3")
    _refused(status, out, err, "did not finish within 3 s")
    pid = int((tmp_path / "pid").read_text())
    for _ in range(100):
        if _state(pid) in (None, "Z"):
            break
        time.sleep(0.05)
    assert _state(pid) in (None, "Z")  # killed with its process group (a zombie at most)


@pytest.mark.parametrize("timeout", ["0", "-1", "nan", "inf"])
def test_timeout_must_be_a_positive_number(timeout, capsys):
    status, out, err = _cli(f"{HOSTILE_FILE}:wrong", capsys, "--timeout", timeout)
    _refused(status, out, err, "timeout must be a finite number of seconds above 0")
    with pytest.raises(ValueError, match="timeout must be a number"):
        check_impl(LAYER, f"{HOSTILE_FILE}:wrong", timeout="soon")


# -- patching NumPy, printing -----------------------------------------------------------------
def test_patching_numpy_in_the_function_does_not_pass(capsys):
    status, out, err = _cli(f"{HOSTILE_FILE}:patches_numpy", capsys)
    assert status == 1, out + err
    assert out.startswith("wrong: ") and "likely mistake: kernel not rotated" in out


def test_patching_numpy_at_import_does_not_pass(tmp_path, capsys):
    spec = _student_file(tmp_path, """
        import numpy
        import numpy.testing
        numpy.allclose = lambda *args, **kwargs: True
        numpy.isclose = lambda a, b, **kwargs: numpy.ones(numpy.broadcast(a, b).shape, bool)
        numpy.testing.assert_allclose = lambda *args, **kwargs: None
    """) + ":wrong"
    status, out, err = _cli(spec, capsys)
    assert status == 1, out + err
    assert "likely mistake: kernel not rotated" in out
    result = check_impl(LAYER, spec)
    assert not result.ok and result.wrong_gradients == ("x",)
    assert np.isclose(0.0, 1.0) == np.False_  # this process's NumPy is untouched


def test_printing_garbage_does_not_reach_standard_output(capfd):
    status = main(["check-impl", f"{HOSTILE_FILE}:prints_garbage", *ARGUMENTS])
    out, err = capfd.readouterr()
    assert status == 1
    assert out.startswith("wrong: ") and "\x1b" not in out + err
    assert "RAW-BYTES" not in out + err and "TEXT-ON-STDERR" not in out + err
    assert out.count("correct: ") == 0
    assert "note: it printed 12 lines while it ran (not shown" in " ".join(out.split())


def test_printing_right_function_is_correct_and_its_output_kept(capfd):
    result = check_impl(LAYER, f"{HOSTILE_FILE}:prints_and_is_right")
    assert result.ok
    assert result.printed_lines == len(result.cases) == 4
    assert "debugging: (2, 1, 3, 5)" in result.output
    assert capfd.readouterr().out == ""


def test_memory_is_limited(capsys):
    status, out, err = _cli(f"{HOSTILE_FILE}:takes_too_much_memory", capsys)
    _refused(status, out, err, "takes_too_much_memory raised MemoryError", "on input 3x5",
             "(its process may take at most 2 GiB of memory)")
    if FORKS:
        with pytest.raises(ImplementationError, match="raised MemoryError"):
            check_impl(LAYER, hostile.takes_too_much_memory)


# -- what comes back -----------------------------------------------------------------------
@pytest.mark.parametrize("function, gradient, dtype", [
    ("returns_complex", "x", "complex128"),
    ("returns_complex_zero_imaginary", "x", "complex128"),
    ("returns_int", "w", "int64"),
    ("returns_bool", "b", "bool"),
    ("returns_float16", "x", "float16"),
])
def test_gradients_must_be_real_floating_point(function, gradient, dtype, capsys):
    status, out, err = _cli(f"{HOSTILE_FILE}:{function}", capsys)
    _refused(status, out, err, f"{function} returned grad_{gradient} of dtype {dtype} on input "
             f"3x5, batch 2", "return a float32 or float64 array")
    with pytest.raises(ImplementationError, match=f"returned grad_{gradient} of dtype {dtype}"):
        check_impl(LAYER, getattr(hostile, function))


def test_complex_gradient_is_refused_without_a_child():
    # the judging itself (no process involved) refuses the imaginary part
    case = _prepare_case(LAYER, (3, 5), 2, np.random.default_rng(0))
    right = tuple(case.expected[name] for name in ("x", "w", "b"))
    assert all(_judge_case(case, right, "f").results[name].ok for name in ("x", "w", "b"))
    with pytest.raises(ImplementationError, match="grad_w of dtype complex128"):
        _judge_case(case, (right[0], right[1] + 0j, right[2]), "f")


@pytest.mark.parametrize("function, message", [
    ("returns_strings", "returned grad_x that is not an array of numbers (a ndarray of dtype "
                        "<U32)"),
    ("returns_objects", "returned grad_b that is not an array of numbers (a ndarray of dtype "
                        "object)"),
    ("returns_dict", "returned a dict on input 3x5, batch 2; expected the tuple (grad_x, grad_w, "
                     "grad_b)"),
    ("returns_huge", "returned an array of shape (2, 1, 1000, 1000) (2000000 elements) on input "
                     "3x5, batch 2, far larger than the gradients"),
    ("raises_keyboard_interrupt", "raised KeyboardInterrupt (line"),
    ("returns_long_tuple", "returned a tuple of 100000 on input 3x5, batch 2; expected the "
                           "tuple (grad_x, grad_w, grad_b)"),
])
def test_unusable_returns(function, message, capsys):
    status, out, err = _cli(f"{HOSTILE_FILE}:{function}", capsys)
    _refused(status, out, err, message)


@pytest.mark.parametrize("function, status, text", [
    ("returns_float32", 0, "correct: "),
    ("returns_lists", 0, "correct: "),
    ("returns_transposed", 1, "grad_x: wrong for 4 of 4 input sizes"),
])
def test_usable_returns(function, status, text, capsys):
    got, out, err = _cli(f"{HOSTILE_FILE}:{function}", capsys)
    assert got == status, out + err
    assert text in out


def test_forged_results_are_read_as_data_only(tmp_path, capsys):
    # the function writes its own result files: a pickle that would run code when
    # loaded, then leaves; the parent reads arrays without pickles
    marker = tmp_path / "unpickled"
    spec = _student_file(tmp_path, f"""
        import json, os, sys
        import numpy as np

        class Payload:
            def __reduce__(self):
                return (open, ({str(marker)!r}, "w"))

        def forge(x, w, b, grad_z, stride=1, padding=0):
            folder = sys.argv[1]
            np.save(os.path.join(folder, "case0_out0.npy"), np.array([Payload()], dtype=object),
                    allow_pickle=True)
            for position in (1, 2):
                np.save(os.path.join(folder, f"case0_out{{position}}.npy"), np.zeros(1))
            with open(os.path.join(folder, "case0.json"), "w") as file:
                json.dump({{"status": "returned", "container": "tuple", "length": 3,
                           "items": [{{"kind": "array"}}] * 3}}, file)
            os._exit(0)

        def garbage(x, w, b, grad_z, stride=1, padding=0):
            with open(os.path.join(sys.argv[1], "case0.json"), "w") as file:
                file.write("[[[[" * 100000)
            os._exit(0)
    """)
    status, out, err = _cli(f"{spec}:forge", capsys)
    _refused(status, out, err, "forge sent back unreadable results: case0_out0.npy")
    assert not marker.exists()
    status, out, err = _cli(f"{spec}:garbage", capsys)
    _refused(status, out, err, "garbage sent back unreadable results: case0.json")


# -- the API with a callable: a forked child -------------------------------------------------
@needs_fork
def test_callable_that_ends_its_process():
    with pytest.raises(ImplementationError, match=r"exits_zero ended its process without "
                                                  r"returning \(exit status 0\) on input 3x5"):
        check_impl(LAYER, hostile.exits_zero)


@needs_fork
def test_callable_with_an_endless_loop():
    start = time.monotonic()
    with pytest.raises(ImplementationError, match="did not return within 1.5 s on input 3x5"):
        check_impl(LAYER, hostile.endless, timeout=1.5)
    assert time.monotonic() - start < 30


@needs_fork
def test_callable_that_patches_numpy_stays_wrong_and_numpy_here_untouched():
    allclose, isclose = np.allclose, np.isclose
    result = check_impl(LAYER, hostile.patches_numpy)
    assert not result.ok and result.mistakes["x"].name == "kernel not rotated"
    assert np.allclose is allclose and np.isclose is isclose


@needs_fork
def test_callable_side_effects_stay_in_the_child(capfd):
    calls = []

    def backward(x, w, b, grad_z, stride=1, padding=0):
        calls.append(x.shape)
        print("inside")
        return hostile.student.backward(x, w, b, grad_z, stride, padding)

    result = check_impl(LAYER, backward)
    assert result.ok and calls == []
    assert result.output == "inside\n" * 4
    assert capfd.readouterr().out == ""


@needs_fork
def test_callable_sys_exit_and_crash():
    with pytest.raises(ImplementationError, match=r"raised SystemExit: 0 \(line"):
        check_impl(LAYER, hostile.sys_exit_zero)
    with pytest.raises(ImplementationError, match=r"killed by SIGSEGV"):
        check_impl(LAYER, hostile.crashes)


def test_callable_without_fork_runs_here(monkeypatch):
    # where fork is not safe (not Linux) a callable runs in this process: documented
    monkeypatch.setattr(impl_process, "FORKS", False)
    calls = []

    def backward(x, w, b, grad_z, stride=1, padding=0):
        calls.append(x.shape)
        return hostile.student.backward(x, w, b, grad_z, stride, padding)

    result = check_impl(LAYER, backward)
    assert result.ok and calls == [case.derivation.input_shape for case in result.cases]
    assert not check_impl(LAYER, hostile.wrong).ok
    with pytest.raises(ImplementationError, match="returned grad_x of dtype complex128"):
        check_impl(LAYER, hostile.returns_complex)


@pytest.mark.parametrize("layer, module, function", [
    (LAYER, student_conv, "backward"),
    (LAYER, student_conv, "backward_stride_not_undone"),
    (LAYER, student_conv, "backward_padding_not_cropped"),
    (Conv2d(in_channels=2, out_channels=2, kernel_size=2, stride=2), student_conv,
     "backward_channels_not_swapped"),
    (MaxPool2d(3, stride=2, padding=1), student_pool, "max_backward"),
    (MaxPool2d(2), student_pool, "max_backward_last_maximum"),
    (AvgPool2d(2, stride=1), student_pool, "avg_backward_overwrite"),
])
def test_file_and_callable_are_judged_identically(layer, module, function):
    spec = f"{module.__file__}:{function}"
    by_file, by_callable = check_impl(layer, spec), check_impl(layer, getattr(module, function))
    label = f"{Path(module.__file__).name}:{function}"
    assert by_file.report().replace(spec, label) == by_callable.report()
    assert by_file.ok == by_callable.ok and by_file.mistakes == by_callable.mistakes
    for one, other in zip(by_file.cases, by_callable.cases, strict=True):
        for name, result in one.results.items():
            np.testing.assert_array_equal(result.given, other.results[name].given)


# -- a real process, as a user runs it -------------------------------------------------------
def test_command_line_os_exit_at_import_subprocess(tmp_path):
    spec = _student_file(tmp_path, "import os\nprint('correct: all good')\nos._exit(0)\n")
    run = subprocess.run([sys.executable, "-m", "symbackprop", "check-impl", f"{spec}:backward",
                          *ARGUMENTS], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert run.returncode == 2, run.stdout + run.stderr
    assert run.stdout == ""
    assert "ended its process (exit status 0) before the function could be called" in run.stderr
    assert "Traceback" not in run.stderr



def test_a_file_edited_and_checked_again_at_once_runs_its_new_code(tmp_path):
    """Same size, same modification time: the old text's cached .pyc must not be what runs."""
    layer = Conv2d(kernel_size=2)
    wrong, right = "grad_z[0].sum(axis=(1, 2))", "grad_z.sum(axis=(0, 2, 3))"
    assert len(wrong) == len(right)
    source = Path(student_conv.__file__).read_text()
    function = source[source.index("def backward_bias_first_sample("):].split("\n\n\n")[0]
    assert wrong in function
    student = tmp_path / "student_edit.py"
    student.write_text(source)
    stamp = student.stat().st_mtime_ns
    assert not check_impl(layer, f"{student}:backward_bias_first_sample").ok
    student.write_text(source.replace(function, function.replace(wrong, right)))
    os.utime(student, ns=(stamp, stamp))  # as if edited within the same second
    fixed = check_impl(layer, f"{student}:backward_bias_first_sample")
    assert fixed.ok, fixed.report()
