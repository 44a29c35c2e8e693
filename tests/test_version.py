"""Which TensorRT-LLM a trtllm-bench belongs to, found without running anything of the user's: not a
`tensorrt_llm.py` in the current directory, not a shell wrapper's interpreter, not PYTHONPATH."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.conftest import FAKES, TRTLLM_SPEC, fake_trtllm_install
from trtbench.backends.trtllm.version import detect_version, python_of
from trtbench.errors import TrtbenchError

HOSTILE = """\
import pathlib
pathlib.Path({marker!r}).write_text("ran")
__version__ = "0.12.0"
"""


def _script(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_a_tensorrt_llm_py_in_the_current_directory_decides_nothing(cli, write_spec, tmp_path, fake_bench,
                                                                     monkeypatch):
    fake_bench.version("1.2.0")
    marker = tmp_path / "hostile-ran"
    (tmp_path / "tensorrt_llm.py").write_text(HOSTILE.format(marker=str(marker)))  # the cli runs from tmp_path
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ['PYTHONPATH']}")
    result = cli("sweep", "--dry-run", str(write_spec(TRTLLM_SPEC)))
    assert result.code == 0, result.err
    assert "TensorRT-LLM 1.2.0" in result.err
    assert not marker.exists()


def test_the_version_is_the_installed_distribution_of_the_bench_python(tmp_path):
    bin_dir = fake_trtllm_install(tmp_path, "0.21.0")
    bench = _script(bin_dir / "trtllm-bench", f"#!{bin_dir / 'python3'}\nprint('never run')\n")
    version = detect_version(str(bench))
    assert (version.major, version.minor, version.patch) == (0, 21, 0)


def test_a_shell_wrapper_in_a_virtual_environment_uses_the_python_beside_it(tmp_path):
    bin_dir = fake_trtllm_install(tmp_path, "1.0.0")
    marker = tmp_path / "bash-ran"
    bench = _script(bin_dir / "trtllm-bench", f"#!/bin/bash\ntouch {marker}\nexec python3 -m x \"$@\"\n")
    assert python_of(str(bench)) == str(bin_dir / "python3")
    assert detect_version(str(bench)).text == "1.0.0"
    assert not marker.exists()


def test_a_shell_wrapper_with_no_python_beside_it_is_a_clear_error(tmp_path):
    bench = _script(tmp_path / "trtllm-bench", "#!/bin/bash\nexec /opt/somewhere/python -m x \"$@\"\n")
    with pytest.raises(TrtbenchError, match=r"cannot tell which Python runs .*trtllm-bench \(a bash script\); "
                                            r"set trtllm.version in the spec"):
        python_of(str(bench))


@pytest.mark.parametrize(("shebang", "python"), [("#!/usr/bin/env python3", "python3"),
                                                  ("#!/usr/bin/env -S python3.12 -u", "python3.12"),
                                                  ("#!/opt/venv/bin/python", "/opt/venv/bin/python")])
def test_python_shebangs(tmp_path, shebang, python):
    assert python_of(str(_script(tmp_path / "trtllm-bench", shebang + "\n"))) == python


def test_a_python_without_tensorrt_llm_is_a_clear_error(tmp_path):
    bin_dir = fake_trtllm_install(tmp_path)
    for info in bin_dir.parent.glob("lib/python*/site-packages/tensorrt_llm-*.dist-info"):
        for file in info.iterdir():
            file.unlink()
        info.rmdir()
    bench = _script(bin_dir / "trtllm-bench", f"#!{bin_dir / 'python3'}\n")
    with pytest.raises(TrtbenchError, match="has no tensorrt_llm package installed"):
        detect_version(str(bench))


def test_the_fake_bench_is_a_python_script():
    assert python_of(str(FAKES / "trtllm-bench")) == "python3"
