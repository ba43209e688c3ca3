"""Check the Apalache and TLC command lines that `make check` builds."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_spec_syntax import ROOT, load_spec_check

spec_check = load_spec_check()
ALL_CONFIGS = list(spec_check.CONFIGS) + list(spec_check.BUG_CONFIGS)
IDS = [config.name for config in ALL_CONFIGS]
APALACHE_CONFIGS = [config for config in ALL_CONFIGS if not config.tlc_only]


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=IDS)
def test_config_files_exist(config: object) -> None:
    assert config.tla.is_file()  # type: ignore[attr-defined]
    assert config.cfg.is_file()  # type: ignore[attr-defined]


@pytest.mark.parametrize("config", APALACHE_CONFIGS, ids=lambda c: c.name)
def test_apalache_command_parts(config: object, tmp_path: Path) -> None:
    name = config.name  # type: ignore[attr-defined]
    invariant = config.invariants()[0]  # type: ignore[attr-defined]

    command = spec_check.apalache_command(config, invariant, out_dir=tmp_path, user="1000:1000")

    assert command[:3] == ["docker", "run", "--rm"]
    assert f"{(ROOT / 'spec').resolve()}:/var/apalache:ro" in command
    assert f"{tmp_path.resolve()}:/out" in command
    assert spec_check.APALACHE_IMAGE in command
    assert not spec_check.APALACHE_IMAGE.endswith(":latest")
    image_at = command.index(spec_check.APALACHE_IMAGE)
    assert command[image_at + 1] == "check"
    assert f"--config={name}.cfg" in command
    assert f"--inv={invariant}" in command
    assert f"--length={config.length}" in command  # type: ignore[attr-defined]
    assert f"--out-dir=/out/{name}/{invariant}" in command
    assert command[-1] == f"{name}.tla"


@pytest.mark.parametrize("config", ALL_CONFIGS, ids=IDS)
def test_tlc_command_parts(config: object, tmp_path: Path) -> None:
    jar = tmp_path / "tla2tools.jar"

    command = spec_check.tlc_command(config, jar, workers=3, meta_dir=tmp_path)

    assert command[0] == "java"
    assert command[command.index("-cp") + 1] == str(jar)
    assert "tlc2.TLC" in command
    assert command[command.index("-config") + 1] == config.cfg.name  # type: ignore[attr-defined]
    assert command[command.index("-workers") + 1] == "3"
    assert "-deadlock" in command
    assert command[command.index("-metadir") + 1] == str(tmp_path / config.name)  # type: ignore[attr-defined]
    assert command[-1] == str(config.tla)  # type: ignore[attr-defined]


def test_bug_lookup_accepts_python_names() -> None:
    assert spec_check.find_bug_config("early_ack").bug == "EarlyAck"
    assert spec_check.find_bug_config("NoFence").bug == "NoFence"


def test_bug_lookup_rejects_unknown_bug() -> None:
    with pytest.raises(ValueError, match="unknown bug"):
        spec_check.find_bug_config("lost_write")


def test_cfg_invariants_reads_sections() -> None:
    text = "CONSTANTS\n  N <- MC_N\nINVARIANTS\n  AInv \\* first\n  BInv\nINIT Init\nINVARIANT CInv\n"

    assert spec_check.cfg_invariants(text) == ["AInv", "BInv", "CInv"]


def test_check_without_docker_exits_3(monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(spec_check.shutil, "which", lambda name: None)

    status = spec_check.main(["check"])

    assert status == 3
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    assert out[0].startswith("Docker is not available: no docker binary")
    assert "`make check CHECKER=tlc TLA2TOOLS=build/spec/tla2tools.jar`" in out[0]


def test_check_bug_without_docker_hints_check_bug(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(spec_check.shutil, "which", lambda name: None)

    status = spec_check.main(["check-bug", "early_ack"])

    assert status == 3
    out = capsys.readouterr().out
    assert "`make check-bug BUG=early_ack CHECKER=tlc TLA2TOOLS=build/spec/tla2tools.jar`" in out
    assert "`make check " not in out


def test_tla2tools_jar_matches_makefile() -> None:
    makefile = (ROOT / "mk" / "spec.mk").read_text(encoding="utf-8")

    assert f"TLA2TOOLS_JAR := {spec_check.TLA2TOOLS_JAR}\n" in makefile


def test_cfg_properties_reads_sections() -> None:
    text = "SPECIFICATION LiveSpec\nPROPERTIES\n  AProp\n  BProp\nINVARIANT CInv\n"

    assert spec_check.cfg_names(text, spec_check.PROPERTY_KEYWORDS) == ["AProp", "BProp"]


def test_check_tlc_without_jar_exits_4(tmp_path: Path) -> None:
    status = spec_check.main(["check", "--checker=tlc", f"--tla2tools={tmp_path / 'none.jar'}"])

    assert status == 4
