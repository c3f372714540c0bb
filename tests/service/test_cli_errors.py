"""Every ``vaelab`` command ends a bad file, a bad option or an unreachable API with one line
on stderr and a non-zero exit code, through the one error path (vae_engine.clierrors)."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from service.cli import main
from tests.conftest import ROOT, free_port, tiny_spec

DEAD = f"http://127.0.0.1:{free_port()}"  # nothing listens there


@pytest.fixture
def files(tmp_path):  # noqa: ANN001, ANN201
    malformed = tmp_path / "bad.yaml"
    malformed.write_text("name: x\nmodel: {arch: mlp\n  latent_dim: [4\n")
    binary = tmp_path / "weights.bin"
    binary.write_bytes(bytes(range(256)) * 8)
    good = tmp_path / "spec.yaml"
    good.write_text(yaml.safe_dump(tiny_spec()))
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({"name": "s", "base": "spec.yaml",
                                     "grid": {"train.seed": [0, 1]}}))
    return {"malformed": malformed, "binary": binary, "missing": tmp_path / "nope.yaml",
            "good": good, "sweep": sweep, "out": tmp_path / "out"}


def _run(capsys, *argv: str) -> tuple[int, str]:  # noqa: ANN001
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert code != 0, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return code, lines[0]


def _file_commands(f: dict, path: str) -> list[list[str]]:
    return [["submit", path, "--url", DEAD], ["sweep", path, "--url", DEAD],
            ["train", path, "--out", str(f["out"])]]


@pytest.mark.parametrize("kind,cause", [("malformed", "not valid YAML"),
                                        ("binary", "binary file"),
                                        ("missing", "No such file")])
def test_bad_files_are_one_line_naming_the_file(capsys, files, kind, cause) -> None:  # noqa: ANN001
    for argv in _file_commands(files, str(files[kind])):
        code, line = _run(capsys, *argv)
        assert code == 2 and str(files[kind]) in line and cause in line, (argv, line)


def test_uploading_a_missing_dataset_file_names_it(capsys, files) -> None:  # noqa: ANN001
    code, line = _run(capsys, "datasets", "upload", str(files["missing"]), "--url", DEAD)
    assert code == 2 and str(files["missing"]) in line and "no such file" in line


def test_a_sweep_whose_base_file_is_bad_names_that_file(capsys, files) -> None:  # noqa: ANN001
    files["good"].write_bytes(b"\x00\x01binary")
    code, line = _run(capsys, "sweep", str(files["sweep"]), "--url", DEAD)
    assert code == 2 and str(files["good"]) in line and "binary" in line


@pytest.mark.parametrize("argv", [
    ["submit", "{good}"], ["sweep", "{sweep}"], ["jobs"], ["status", "abcdef12"],
    ["cancel", "abcdef12"], ["rd", "abcdef12"], ["download", "abcdef12", "--out", "{out}"],
    ["sweeps"], ["watch", "abcdef12"], ["rm", "abcdef12"], ["datasets", "list"],
])
def test_a_dead_url_is_one_line_with_exit_3(capsys, files, argv) -> None:  # noqa: ANN001
    if argv[0] not in _commands():
        pytest.skip(f"no {argv[0]} command yet")
    argv = [a.format(**{k: str(v) for k, v in files.items()}) for a in argv]
    code, line = _run(capsys, *argv, "--url", DEAD)
    assert code == 3 and "cannot reach the API" in line and DEAD.split("//")[1] in line


def test_a_malformed_url_names_the_option(capsys) -> None:  # noqa: ANN001
    code, line = _run(capsys, "jobs", "--url", "ftp//nowhere")
    assert code == 2 and "--url" in line


def test_the_installed_command_prints_no_traceback(files) -> None:  # noqa: ANN001
    proc = subprocess.run([sys.executable, "-m", "service.cli", "submit",
                           str(files["binary"]), "--url", DEAD], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr + proc.stdout
    assert proc.stderr.strip().startswith("vaelab: error:") and "binary" in proc.stderr


def _commands() -> set[str]:
    from service.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return set(sub.choices)


def test_every_option_of_every_command_has_help() -> None:
    import argparse

    from service.cli import build_parser

    def walk(parser: argparse.ArgumentParser, name: str):  # noqa: ANN202
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    yield from walk(sub, f"{name} {sub_name}")
            elif not isinstance(action, argparse._HelpAction) and not action.help:
                yield f"{name} {'/'.join(action.option_strings) or action.dest}"

    assert list(walk(build_parser(), "vaelab")) == []
