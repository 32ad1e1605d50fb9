"""minigrad keeps freed memory between steps on Linux/glibc, and leaves it alone when asked."""

import os
import subprocess
import sys

import pytest


def _tuned(env_value: str | None) -> str:
    env = dict(os.environ)
    env.pop("MINIGRAD_MALLOC_TUNING", None)
    if env_value is not None:
        env["MINIGRAD_MALLOC_TUNING"] = env_value
    code = "import minigrad._malloc as m; print(m.tuned)"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_import_tunes_glibc_and_the_variable_opts_out():
    assert _tuned(None) == "True"
    assert _tuned("0") == "False"
