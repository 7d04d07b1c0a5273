"""leak_demo's logic on the host under valgrind memcheck (pool annotated with mempool client requests):
memcheck must report exactly the planted leak, allocated in app_build_response, and no other error."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET

from fw_hostlib import HOST_BUILD, build_host


def _run(tmp_path, rounds: int) -> ET.Element:
    build_host()
    xml = tmp_path / "memcheck.xml"
    proc = subprocess.run(
        ["valgrind", "--leak-check=full", "--xml=yes", f"--xml-file={xml}", str(HOST_BUILD / "leak_demo_vg"),
         str(rounds)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"rounds {rounds} leaked {rounds // 16}" in proc.stdout
    return ET.parse(xml).getroot()


def test_memcheck_reports_only_the_planted_leak(tmp_path):
    root = _run(tmp_path, 64)
    errors = root.findall("error")
    assert [e.findtext("kind") for e in errors] == ["Leak_DefinitelyLost"]
    leak = errors[0]
    assert leak.find("xwhat/leakedblocks").text == "4"
    assert leak.find("xwhat/leakedbytes").text == str(4 * 64)
    fns = [f.findtext("fn") for f in leak.findall("stack/frame")]
    assert "LOS_MemMalloc" in fns
    assert fns[fns.index("LOS_MemMalloc") + 1] == "app_build_response"
    assert "app_handle_request" in fns


def test_memcheck_clean_without_the_rare_path(tmp_path):
    root = _run(tmp_path, 15)  # requests 0..14 never take the leaking path
    assert root.findall("error") == []
