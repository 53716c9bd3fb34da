"""Virtualenvs holding one TensorFlow release and its TF Text, for ``check-serving``.

``$TF_PROFILES_CACHE/serving-check/tf-X`` (default ``~/.cache/tf_profiles``)
gets ``tensorflow==X`` and the TF Text of the same major.minor from pip, once;
later checks reuse it. ``probe.py`` runs with its interpreter.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

from tf_profiles.compat.versions import parse_version
from tf_profiles.errors import UserError
from tf_profiles.text.cache import default_cache_dir

PROBE = Path(__file__).with_name("probe.py")
INSTALLED = "installed.json"


def env_dir(version: str, cache_dir: Optional[Path] = None) -> Path:
    return Path(cache_dir or default_cache_dir()) / "serving-check" / f"tf-{version}"


def _run(command, what: str, timeout: float):
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PIP_DISABLE_PIP_VERSION_CHECK="1")
    try:
        done = subprocess.run([str(part) for part in command], capture_output=True, text=True,
                              env=environment, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise UserError(f"{what} did not finish in {timeout} s") from None
    if done.returncode != 0:
        raise UserError(f"{what} failed (exit {done.returncode}): "
                        f"{(done.stderr or done.stdout).strip()[-2000:]}")


def ensure_env(version: str, cache_dir: Optional[Path] = None, log=print) -> Path:
    """The interpreter of TensorFlow ``version``'s virtualenv, created on first use.

    Raises:
      ValueError: ``version`` is not X.Y.Z, or pip cannot install it.
    """
    major, minor, _ = parse_version(version)
    folder = env_dir(version, cache_dir)
    python = folder / "bin" / "python"
    if (folder / INSTALLED).exists():
        return python
    # No INSTALLED file: a first use, or an install that was interrupted.
    shutil.rmtree(folder, ignore_errors=True)
    packages = [f"tensorflow=={version}", f"tensorflow-text=={major}.{minor}.*"]
    log(f"creating {folder} with {' '.join(packages)} (once; minutes)")
    started = time.perf_counter()
    _run([sys.executable, "-m", "venv", folder], f"python -m venv {folder}", timeout=300)
    _run([python, "-I", "-m", "pip", "install", "--quiet", *packages],
         f"pip install {' '.join(packages)} into {folder}", timeout=3600)
    seconds = round(time.perf_counter() - started, 1)
    (folder / INSTALLED).write_text(json.dumps({"packages": packages, "seconds": seconds}))
    log(f"created {folder} in {seconds} s")
    return python


def run_probe(python: Path, command: str, *arguments, payload=None) -> dict:
    """``probe.py COMMAND ARGUMENTS... [IN.json] OUT.json`` with ``python``:
    ``payload`` is written to IN.json; returns what the probe wrote to OUT.json."""
    with tempfile.TemporaryDirectory(prefix="tf-profiles-probe-") as scratch:
        files = [Path(scratch) / "out.json"]
        if payload is not None:
            files.insert(0, Path(scratch) / "in.json")
            files[0].write_text(json.dumps(payload))
        # -I: neither this environment's PYTHONPATH nor the probe's folder
        # (tf_profiles/serving, whose module names could shadow others) on sys.path.
        _run([python, "-I", PROBE, command, *arguments, *files], f"{python} {PROBE.name} {command}",
             timeout=1200)
        return json.loads(files[-1].read_text())
