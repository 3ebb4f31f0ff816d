"""Issue 24, offline and first start: `python -m vitdemo data [--check]`, a missing dataset told to the teacher
without the server's folders, and the Train page refusing a run whose dataset is not there. No network: every
download goes to a closed local port and fails at once."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from vitdemo.cli.main import main
from vitdemo.data import RAW_FILES, MissingData, download, load_raw, missing_files
from vitdemo.views.messages import data_error_text, dataset_missing

UNREACHABLE = "http://127.0.0.1:9/"  # the discard port: nothing listens, the connection is refused at once


@pytest.fixture
def empty_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data folder as $VITDEMO_DATA_DIR, with torchvision's mirrors pointed at a closed port."""
    import torchvision.datasets as tvd

    for cls in (tvd.MNIST, tvd.FashionMNIST):
        monkeypatch.setattr(cls, "mirrors", [UNREACHABLE])
    folder = tmp_path / "secret-server-folder" / "data"
    folder.mkdir(parents=True)
    monkeypatch.setenv("VITDEMO_DATA_DIR", str(folder))
    return folder


def _fake_files(root: Path, folder: str, names=RAW_FILES) -> None:
    (root / folder / "raw").mkdir(parents=True, exist_ok=True)
    for name in names:
        (root / folder / "raw" / name).write_bytes(b"")


def test_a_missing_dataset_fails_fast_naming_folder_files_and_command(empty_data: Path) -> None:
    start = time.perf_counter()
    with pytest.raises(MissingData) as info:
        load_raw("mnist", train=False)
    assert time.perf_counter() - start < 10
    exc = info.value
    text = str(exc)
    assert str(empty_data / "MNIST" / "raw") in text  # a terminal's message names the folder
    assert all(name in text for name in RAW_FILES) and "python -m vitdemo data" in text
    assert exc.dataset == "mnist" and exc.folder == "MNIST" and exc.missing == RAW_FILES


def test_the_page_message_says_where_and_how_without_the_server_path(empty_data: Path) -> None:
    with pytest.raises(MissingData) as info:
        download("fashion")
    text = data_error_text(info.value)
    assert "secret-server-folder" not in text and str(empty_data) not in text and "urlopen" not in text
    assert "FashionMNIST/raw/" in text and "python -m vitdemo data" in text and "--check" in text
    assert "VITDEMO_DATA_DIR" in text and all(name in text for name in RAW_FILES)


def test_missing_files_names_only_what_is_missing(empty_data: Path) -> None:
    assert missing_files("mnist") == RAW_FILES
    _fake_files(empty_data, "MNIST", RAW_FILES[:3])
    assert missing_files("mnist") == RAW_FILES[3:]
    _fake_files(empty_data, "MNIST")
    assert missing_files("mnist") == ()


def test_dataset_missing_for_a_run(empty_data: Path) -> None:
    run = SimpleNamespace(dataset="mnist")
    text = dataset_missing(run)
    assert text is not None and "MNIST/raw/" in text and str(empty_data) not in text
    _fake_files(empty_data, "MNIST")
    assert dataset_missing(run) is None
    assert dataset_missing(SimpleNamespace()) is None  # a config without a dataset


def test_cli_data_check(empty_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _fake_files(empty_data, "MNIST")
    assert main(["data", "--check"]) == 1
    out = capsys.readouterr().out
    assert f"Data folder: {empty_data} (from $VITDEMO_DATA_DIR)" in out
    assert f"MNIST: ready in {empty_data / 'MNIST' / 'raw'}" in out
    assert f"FashionMNIST: not there. Put the four *-ubyte files ({', '.join(RAW_FILES)}) in " in out
    assert str(empty_data / "FashionMNIST" / "raw") in out
    assert main(["data", "--check", "--dataset", "mnist"]) == 0


def test_cli_data_download_fails_cleanly_offline(empty_data: Path, tmp_path: Path, capsys) -> None:
    other = tmp_path / "elsewhere"
    start = time.perf_counter()
    assert main(["data", "--data-dir", str(other), "--dataset", "mnist"]) == 1
    assert time.perf_counter() - start < 10
    out = capsys.readouterr().out
    assert "(from --data-dir)" in out and "MNIST: the download failed: MNIST was not found in" in out
    assert "Traceback" not in out


def test_cli_data_downloads_what_is_missing(empty_data: Path, monkeypatch, capsys) -> None:
    import torchvision.datasets as tvd

    def fake_download(self) -> None:  # what torchvision leaves: the four uncompressed files in raw/
        _fake_files(empty_data, "MNIST")

    monkeypatch.setattr(tvd.MNIST, "download", fake_download)
    monkeypatch.setattr(tvd.MNIST, "__init__", lambda self, root, train, download: fake_download(self))
    assert main(["data", "--dataset", "mnist"]) == 0
    assert "MNIST: ready in" in capsys.readouterr().out


def test_train_page_refuses_a_run_whose_dataset_is_missing(
    empty_data: Path, tmp_home: Path, tmp_path: Path, monkeypatch, worker_starts
) -> None:
    from apptest import open_page, texts

    from vitdemo.runs.store import Registry

    monkeypatch.setenv("VITDEMO_CHECKPOINTS", str(tmp_path / "no-checkpoints"))
    at = open_page("train")
    warned = [t for t in texts(at, "warning") if "MNIST is not on this server yet" in t]
    assert warned and "secret-server-folder" not in warned[0]  # said before the start button is pressed
    at.button(key="start_training").click().run()
    assert not at.exception
    assert any(t.startswith("Nothing was queued. **MNIST is not on this server yet**") for t in texts(at, "warning"))
    assert [r for r in Registry(tmp_home).list_runs() if not r.baseline] == [] and worker_starts == []
