"""SafeRoot refuses exactly what resolve_under refuses, with one lstat a name."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from avs_synth.safe_paths import SafeRoot, UnsafePathError, resolve_under


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("tree")
    root = base / "root"
    (root / "train2017").mkdir(parents=True)
    (root / "train2017" / "a.jpg").write_bytes(b"x")
    (base / "secret.jpg").write_bytes(b"s")
    (base / "outside").mkdir()
    (root / "link.jpg").symlink_to(base / "secret.jpg")  # a file link out of the root
    (root / "out").symlink_to(base / "outside")  # a folder link out of the root
    (root / "in.jpg").symlink_to(root / "train2017" / "a.jpg")  # a link that stays inside
    (root / "loop").symlink_to(root / "loop")
    return root


def _outcome(call):
    try:
        return ("ok", str(call()))
    except UnsafePathError as error:
        return ("refused", str(error).split(": refusing", 1)[1].split(" (root")[0])


NAMES = st.lists(
    st.sampled_from(
        [
            "a.jpg",
            "train2017",
            "..",
            ".",
            "",
            "link.jpg",
            "out",
            "in.jpg",
            "loop",
            "x\x00",
            "C:",
            "\\",
            "/",
            "b c.jpg",
            ".hidden",
            "é.jpg",
        ]
    ),
    min_size=1,
    max_size=4,
).map("/".join)


@settings(max_examples=300, deadline=None)
@given(NAMES)
def test_same_decisions_as_resolve_under(tree, name):
    guard = SafeRoot(tree)
    assert _outcome(lambda: guard.resolve(name)) == _outcome(lambda: resolve_under(tree, name))


def test_must_exist_and_messages(tree):
    guard = SafeRoot(tree)
    assert guard.resolve("train2017/a.jpg", must_exist=True) == tree.absolute() / "train2017/a.jpg"
    assert guard.check("in.jpg", must_exist=True) == str(tree.absolute() / "in.jpg")
    with pytest.raises(FileNotFoundError, match="missing.jpg: file not found"):
        guard.resolve("train2017/missing.jpg", must_exist=True)
    with pytest.raises(FileNotFoundError):
        guard.resolve("train2017", must_exist=True)  # a folder is not a picture
    with pytest.raises(UnsafePathError, match=r"^ann.json:7: refusing file name 'link.jpg'"):
        guard.resolve("link.jpg", source="ann.json", line=7)
    with pytest.raises(UnsafePathError, match="symlink escape"):
        guard.resolve("out/x.jpg")
