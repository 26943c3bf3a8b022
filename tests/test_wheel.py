"""The package works when installed from a built wheel, not only from the checkout."""

import shutil
import subprocess
import sys
import zipfile

import pytest
from conftest import REPO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    pytest.importorskip("hatchling", reason="the wheel is built with hatchling (test extra)")
    root = tmp_path_factory.mktemp("wheel")
    source = root / "src"
    # Build from a copy so nothing is written into the checkout.
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "__pycache__", "*.egg-info", "build", "dist", ".pytest_cache"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "-w", str(root / "dist"), str(source)], check=True)
    wheel = next((root / "dist").glob("symbackprop-*.whl"))
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)],
                   check=True)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                    "--no-deps", str(wheel)], check=True)
    return wheel, venv


def test_wheel_ships_templates(installed):
    wheel, _ = installed
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {name for name in names if name.startswith("symbackprop/templates/")}
    # a kind's templates sit in a folder of their own: the wheel keeps the folders
    expected = {f"symbackprop/templates/{path.relative_to(REPO / 'templates').as_posix()}"
                for path in (REPO / "templates").rglob("*") if path.is_file()}
    assert expected and expected <= shipped


def test_installed_console_script_and_templates(installed, tmp_path):
    _, venv = installed
    result = subprocess.run([str(venv / "bin" / "symbackprop"), "derive", "conv2d",
                             "--kernel", "2", "--padding", "1", "--input", "3x3"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "dL/dx11 = g11 w22 + g12 w21 + g21 w12 + g22 w11" in result.stdout
    probe = ("import symbackprop, symbackprop.render.templating as t; "
             "print(symbackprop.__file__); print(t.template_dir())")
    where = subprocess.run([str(venv / "bin" / "python"), "-c", probe], cwd=tmp_path,
                           capture_output=True, text=True, check=True).stdout.split()
    assert str(venv) in where[0], "imported the checkout instead of the wheel"
    assert where[1].startswith(str(venv)) and where[1].endswith("symbackprop/templates")
