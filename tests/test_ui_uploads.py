"""Uploaded article files: safe names, size and type checks, no overwrites, no escapes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ui.uploads import SUFFIXES, Upload, UploadRejected, safe_name, store_uploads

MB = 1_000_000
JSONL = b'{"id": "a", "title": "A", "text": "Some text."}\n'


def incoming(tmp_path: Path, name: str, content: bytes) -> Upload:
    """A file as the web server writes it: a temp path, and the name the browser sent."""
    folder = tmp_path / "incoming"
    folder.mkdir(exist_ok=True)
    path = folder / f"tmp{len(list(folder.iterdir()))}"
    path.write_bytes(content)
    return Upload(name=name, path=path)


def files_under(path: Path) -> set[Path]:
    return {p.relative_to(path) for p in path.rglob("*")}


# --- safe_name ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("articles.jsonl", "articles.jsonl"),
        ("../../etc/passwd.jsonl", "passwd.jsonl"),
        ("/etc/passwd.jsonl", "passwd.jsonl"),
        ("..\\..\\win.csv", "win.csv"),
        ("C:\\Users\\me\\news.tsv", "news.tsv"),
        (".hidden.txt", "hidden.txt"),
        ("...jsonl", "upload.jsonl"),
        (".jsonl", "upload.jsonl"),
        ("a b;rm -rf.md", "a_b_rm_-rf.md"),
        ("$(reboot).html", "reboot.html"),
        ("ÜBER.html", "BER.html"),
        ("über news.html", "ber_news.html"),
        ("新闻.json", "upload.json"),
        ("noext", "noext"),
        ("x.JSONL", "x.jsonl"),
        ("Report.Final.HTM", "Report.Final.htm"),
        ("x.js on;l", "x.jsonl"),
        ("..", "upload"),
        ("", "upload"),
        ("dir/", "upload"),
    ],
)
def test_safe_name(sent: str, stored: str) -> None:
    assert safe_name(sent) == stored


def test_safe_name_is_plain_and_never_hidden() -> None:
    for sent in ("../../etc/passwd.jsonl", "..\\..\\win.csv", ".hidden.txt", "-x.csv", "_.md"):
        name = safe_name(sent)
        assert "/" not in name and "\\" not in name
        assert not name.startswith((".", "-", "_")), name
        assert name not in ("", ".", "..")


def test_safe_name_caps_long_stems_and_keeps_the_suffix() -> None:
    name = safe_name("n" * 300 + ".jsonl")
    assert name == "n" * 100 + ".jsonl"
    assert safe_name("m" * 101) == "m" * 100
    assert safe_name("é" * 50 + "k" * 150 + ".csv") == "k" * 100 + ".csv"


# --- store_uploads --------------------------------------------------------------------


def test_stores_copies_inside_the_folder_under_safe_names(tmp_path: Path) -> None:
    folder = tmp_path / "ix" / "uploads"
    uploads = [
        incoming(tmp_path, "../../news.jsonl", JSONL),
        incoming(tmp_path, "Tab Le.CSV", b"id,title,text\nb,B,Body.\n"),
    ]
    stored = store_uploads(uploads, folder, MB)
    assert stored == [folder.resolve() / "news.jsonl", folder.resolve() / "Tab_Le.csv"]
    assert stored[0].read_bytes() == JSONL
    assert stored[1].read_bytes() == b"id,title,text\nb,B,Body.\n"
    assert uploads[0].path.exists()  # copied, the web server's temp file is its own
    assert files_under(folder) == {Path("news.jsonl"), Path("Tab_Le.csv")}


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_every_supported_suffix_is_stored(tmp_path: Path, suffix: str) -> None:
    stored = store_uploads([incoming(tmp_path, f"a{suffix.upper()}", b"x")], tmp_path / "up", MB)
    assert [p.name for p in stored] == [f"a{suffix}"]


@pytest.mark.parametrize("name", ["run.sh", "a.jsonl.exe", "noext", "archive.zip", "x.pdf"])
def test_unsupported_suffix_is_refused_by_its_original_name(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "up"
    with pytest.raises(UploadRejected, match="not an article file") as refused:
        store_uploads([incoming(tmp_path, name, b"data")], folder, MB)
    assert str(refused.value).startswith(f"{name}:")
    assert ".jsonl" in str(refused.value)
    assert not folder.exists()


def test_over_size_is_refused_naming_the_limit_and_setting(tmp_path: Path) -> None:
    folder = tmp_path / "up"
    big = incoming(tmp_path, "../big one.jsonl", b"x" * (2 * MB + 1))
    with pytest.raises(UploadRejected) as refused:
        store_uploads([big], folder, 2 * MB)
    message = str(refused.value)
    assert message.startswith("../big one.jsonl:")
    assert "2 MB limit" in message
    assert "chat.max_upload_mb" in message
    assert not folder.exists()


def test_exactly_the_limit_is_accepted(tmp_path: Path) -> None:
    stored = store_uploads([incoming(tmp_path, "a.txt", b"x" * 1000)], tmp_path / "up", 1000)
    assert stored[0].stat().st_size == 1000


def test_empty_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UploadRejected, match=r"^empty\.csv: the file is empty$"):
        store_uploads([incoming(tmp_path, "empty.csv", b"")], tmp_path / "up", MB)


def test_one_bad_file_stores_none_of_the_batch(tmp_path: Path) -> None:
    folder = tmp_path / "up"
    folder.mkdir()
    good = incoming(tmp_path, "good.jsonl", JSONL)
    for bad in (
        incoming(tmp_path, "bad.exe", b"MZ"),
        incoming(tmp_path, "empty.txt", b""),
        incoming(tmp_path, "big.csv", b"x" * (MB + 1)),
    ):
        for batch in ([good, bad], [bad, good]):
            with pytest.raises(UploadRejected):
                store_uploads(batch, folder, MB)
            assert list(folder.iterdir()) == []


def test_same_name_same_content_reuses_the_file(tmp_path: Path) -> None:
    folder = tmp_path / "up"
    first = store_uploads([incoming(tmp_path, "news.jsonl", JSONL)], folder, MB)
    mtime = first[0].stat().st_mtime_ns
    again = store_uploads([incoming(tmp_path, "news.jsonl", JSONL)], folder, MB)
    assert again == first
    assert first[0].stat().st_mtime_ns == mtime
    assert files_under(folder) == {Path("news.jsonl")}


def test_same_name_other_content_gets_a_hash_suffix(tmp_path: Path) -> None:
    folder = tmp_path / "up"
    other = b'{"id": "b", "title": "B", "text": "Other text."}\n'
    (first,) = store_uploads([incoming(tmp_path, "news.jsonl", JSONL)], folder, MB)
    (second,) = store_uploads([incoming(tmp_path, "sub/news.jsonl", other)], folder, MB)
    digest = hashlib.sha256(other).hexdigest()[:10]
    assert second.name == f"news-{digest}.jsonl"
    assert first.read_bytes() == JSONL  # the earlier upload is intact
    assert second.read_bytes() == other
    (third,) = store_uploads([incoming(tmp_path, "news.jsonl", other)], folder, MB)
    assert third == second  # the renamed copy is found again, not copied twice
    assert files_under(folder) == {Path("news.jsonl"), Path(f"news-{digest}.jsonl")}


def test_same_name_twice_in_one_batch(tmp_path: Path) -> None:
    folder = tmp_path / "up"
    other = b"Other text.\n"
    stored = store_uploads(
        [
            incoming(tmp_path, "a/notes.txt", b"Text.\n"),
            incoming(tmp_path, "b/notes.txt", other),
            incoming(tmp_path, "c/notes.txt", b"Text.\n"),
        ],
        folder,
        MB,
    )
    digest = hashlib.sha256(other).hexdigest()[:10]
    assert [p.name for p in stored] == ["notes.txt", f"notes-{digest}.txt", "notes.txt"]
    assert len(list(folder.iterdir())) == 2


def test_malicious_names_never_write_outside_the_folder(tmp_path: Path) -> None:
    folder = tmp_path / "deep" / "ix" / "uploads"
    folder.mkdir(parents=True)
    names = [
        "../../escape.jsonl",
        "../uploads2/x.csv",
        "..\\..\\win.csv",
        "/tmp/abs.txt",
        str(tmp_path / "abs2.md"),
        "....//....//y.html",
        ".bashrc.txt",
        "a/../../../z.json",
    ]
    uploads = [incoming(tmp_path, name, f"{i}\n".encode()) for i, name in enumerate(names)]
    before = files_under(tmp_path)
    stored = store_uploads(uploads, folder, MB)
    root = folder.resolve()
    assert all(p.parent == root for p in stored)
    new = files_under(tmp_path) - before
    assert new == {p.relative_to(tmp_path.resolve()) for p in stored}
    assert all(path.parent == Path("deep/ix/uploads") for path in new)
    assert not any(p.name.startswith(".") for p in folder.iterdir())
    outside = Path("/tmp/abs.txt")
    assert not (outside.exists() and outside.read_bytes() == b"3\n")


def test_no_partial_files_are_left_behind(tmp_path: Path) -> None:
    folder = tmp_path / "up"
    uploads = [incoming(tmp_path, f"f{i}.jsonl", JSONL + bytes([65 + i])) for i in range(3)]
    store_uploads(uploads, folder, MB)
    store_uploads([incoming(tmp_path, "f0.jsonl", b"changed\n")], folder, MB)
    names = [p.name for p in tmp_path.rglob("*")]
    assert not [n for n in names if n.endswith(".part")]
    assert len(list(folder.iterdir())) == 4


def test_folder_is_created_when_missing(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b" / "uploads"
    (stored,) = store_uploads([incoming(tmp_path, "x.md", b"# T\n")], folder, MB)
    assert folder.is_dir() and stored.parent == folder.resolve()


def test_no_uploads_store_nothing(tmp_path: Path) -> None:
    assert store_uploads([], tmp_path / "up", MB) == []
