"""Property tests: whatever a ``manifest.json`` holds, reading it either gives shard locations
that are all shard names, or one clear error; never another exception, never shell syntax."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avs_model.data.stream import resolve_shards
from avs_synth import schema

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
NAMES = st.one_of(
    st.from_regex(r"\A(train|val|test|bank)-\d{6}\.tar\Z"),
    st.text(max_size=40),
    st.sampled_from(["train-000000.tar; touch X", "../../etc/passwd", "train-00000.tar", "$(id)"]),
    JSON,
)
SHARD = st.fixed_dictionaries({"name": NAMES}, optional={"audio_class": JSON, "samples": JSON})
SECTION = st.one_of(
    JSON, st.fixed_dictionaries({"shards": st.one_of(JSON, st.lists(SHARD, max_size=3))})
)
MANIFEST = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {},
        optional={
            "splits": st.one_of(JSON, st.dictionaries(st.sampled_from(schema.SPLITS), SECTION)),
            "bank": SECTION,
        },
    ),
)
EXPECTED_ERRORS = (ValueError, FileNotFoundError)  # DataFormatError is a ValueError


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(manifest=MANIFEST)
def test_any_manifest_gives_shard_names_or_one_clear_error(tmp_path: Path, manifest) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    for location in (f"pipe:cat {tmp_path}/{{name}}", f"file://{tmp_path}"):
        try:
            shards = resolve_shards(location)
        except EXPECTED_ERRORS as error:
            assert str(error) and "\n" not in str(error)
            continue
        for url in [*sum(shards.splits.values(), []), *shards.bank, *shards.bank_classes]:
            name = url.rsplit("/", 1)[-1]
            assert schema.SHARD_NAME.fullmatch(name), url
            assert url.startswith(location.replace("{name}", "")) or url.startswith(location)


@pytest.mark.parametrize("text", ["", "{", "[1, 2]", '"a string"', "null", '{"splits": 3}'])
def test_malformed_manifest_files(tmp_path: Path, text: str) -> None:
    (tmp_path / "manifest.json").write_text(text, encoding="utf-8")
    (tmp_path / "train-000000.tar").write_bytes(b"")
    with pytest.raises(EXPECTED_ERRORS):
        resolve_shards(f"pipe:cat {tmp_path}/{{name}}")
    if text in ("", "{"):
        with pytest.raises(ValueError, match="manifest.json: malformed JSON"):
            resolve_shards(tmp_path)


def test_a_manifest_saved_with_a_bom_is_read(tmp_path: Path) -> None:
    manifest = {"splits": {"train": {"shards": [{"name": "train-000000.tar"}]}}}
    (tmp_path / "manifest.json").write_text("\ufeff" + json.dumps(manifest), encoding="utf-8")
    (tmp_path / "train-000000.tar").write_bytes(b"")
    assert resolve_shards(f"pipe:cat {tmp_path}/{{name}}").urls("train") == [
        f"pipe:cat {tmp_path}/train-000000.tar"
    ]
    assert resolve_shards(tmp_path).urls("train") == [str(tmp_path / "train-000000.tar")]
