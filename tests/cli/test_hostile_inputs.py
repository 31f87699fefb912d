"""Every command of both apps on bad input (issue 12): a one-line error naming the file (and line /
member / entry), a non-zero exit and no Python traceback, or the sample skipped and counted.

Each case corrupts one input of a working sample-corpus command; ``test_tally`` prints the
figures for the issue's closing note (inputs tried, handled cleanly, crashes, hangs, data lost,
escapes) as the cases ran.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from avs_synth_cli.synth import app as synth
from avs_synth_cli.train import app as train
from tests.support.build_support import sample_corpus

runner = CliRunner()
BUILD = ["--min-mask-area", "0", "--max-per-picture", "0", "--no-progress", "--shard-size", "50"]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return sample_corpus(tmp_path_factory) / "corpus"


@dataclass
class Case:
    """A command (built from the corpus and a scratch folder) and what it must say."""

    name: str
    make: Callable[[Path, Path], tuple[object, list[str], str]]  # -> app, args, needle
    skipped: str | None = None  # the run succeeds and counts this reason in the report


def _build_args(c: Path, tmp: Path, **swap: Path) -> list[str]:
    paths = {
        "lvis": c / "lvis/lvis_v1_val.json",
        "coco": c / "coco/annotations/instances_val2017.json",
        "csv": c / "vggsound/vggsound.csv",
        "clips": c / "vggsound/clips",
        "matches": c.parent / "matches.csv",
        "avsbench": c / "avsbench",
        **swap,
    }
    return [
        "build",
        *("--lvis", str(paths["lvis"]), "--lvis-images", str(c / "coco")),
        *("--coco", str(paths["coco"]), "--coco-images", str(c / "coco")),
        *("--vggsound-csv", str(paths["csv"]), "--vggsound-clips", str(paths["clips"])),
        *("--matches", str(paths["matches"]), "--avsbench", str(paths["avsbench"])),
        *("--out", str(tmp / "out"), *BUILD),
    ]


def _write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _json_edit(source: Path, target: Path, edit: Callable[[dict], None]) -> Path:
    doc = json.loads(source.read_text())
    edit(doc)
    return _write(target, json.dumps(doc))


def _lvis(c: Path, tmp: Path, edit: Callable[[dict], None]) -> list[str]:
    return _build_args(c, tmp, lvis=_json_edit(c / "lvis/lvis_v1_val.json", tmp / "l.json", edit))


def _set_name_null(doc: dict) -> None:
    doc["categories"][0]["name"] = None


def _far_polygon(scale: float) -> Callable[[dict], None]:
    def edit(doc: dict) -> None:
        for ann in doc["annotations"]:
            if isinstance(ann["segmentation"], list):
                ann["segmentation"][0][0] = scale

    return edit


def _avsbench_with(c: Path, tmp: Path, text: str) -> Path:
    root = tmp / "avsbench"
    shutil.copytree(c / "avsbench", root)
    _write(root / "Single-source/s4_meta_data.csv", text)
    return root


def _copy_openimages(c: Path, tmp: Path, name: str, data: str) -> Path:
    root = tmp / "openimages"
    shutil.copytree(c / "openimages", root)
    _write(root / name, data)
    return root


def _openimages_args(c: Path, tmp: Path, root: Path) -> list[str]:
    return [
        "build",
        *("--openimages", str(root)),
        *("--vggsound-csv", str(c / "vggsound/vggsound.csv")),
        *("--vggsound-clips", str(c / "vggsound/clips")),
        *("--matches", str(c.parent / "matches.csv"), "--out", str(tmp / "out"), *BUILD),
    ]


def _loop_clips(c: Path, tmp: Path) -> Path:
    clips = tmp / "clips"
    shutil.copytree(c / "vggsound/clips", clips)
    (clips / "loop").symlink_to(clips, target_is_directory=True)
    (clips / "loop2").symlink_to(clips, target_is_directory=True)
    return clips


def _corrupt_tar(c: Path, tmp: Path) -> Path:
    shard = _write(tmp / "shards/train-000000.tar", b"\0" * 700 + b"not a tar")
    return shard


def _ckpt(tmp: Path, data: bytes) -> Path:
    return _write(tmp / "model.pt", data)


CASES: list[Case] = []


def case(name: str, *, skipped: str | None = None):
    """Register a case: a function of (corpus, scratch folder) -> (app, args, needle)."""

    def register(make):
        CASES.append(Case(name, make, skipped))
        return make

    return register


# avs-synth build: the inputs


@case("empty vggsound.csv")
def _empty_vggsound_csv(c: Path, t: Path):
    return (synth, _build_args(c, t, csv=_write(t / "v.csv", "")), f"{t}/v.csv: no clip rows")


@case("vggsound.csv not text")
def _vggsound_csv_not_text(c: Path, t: Path):
    return (
        synth,
        _build_args(c, t, csv=_write(t / "v.csv", b"\xff\xfe\x00abc")),
        f"{t}/v.csv: not UTF-8",
    )


@case("vggsound.csv bad row")
def _vggsound_csv_bad_row(c: Path, t: Path):
    return (
        synth,
        _build_args(c, t, csv=_write(t / "v.csv", "a,1,dog,train\nb,x,dog,train\n")),
        f"{t}/v.csv:2: start_seconds 'x'",
    )


@case("vggsound.csv quote")
def _vggsound_csv_quote(c: Path, t: Path):
    return (synth, _build_args(c, t, csv=_write(t / "v.csv", 'a,1,"dog\n')), f"{t}/v.csv")


@case("LVIS truncated")
def _lvis_truncated(c: Path, t: Path):
    return (
        synth,
        _build_args(
            c, t, lvis=_write(t / "l.json", (c / "lvis/lvis_v1_val.json").read_text()[:500])
        ),
        f"{t}/l.json:",
    )


@case("LVIS not an object")
def _lvis_not_an_object(c: Path, t: Path):
    return (
        synth,
        _build_args(c, t, lvis=_write(t / "l.json", "[1, 2]")),
        f"{t}/l.json: not a COCO-style",
    )


@case("LVIS category name null")
def _lvis_category_name_null(c: Path, t: Path):
    return (synth, _lvis(c, t, _set_name_null), f"{t}/l.json: categories[0]")


@case("LVIS images not a list")
def _lvis_images_not_a_list(c: Path, t: Path):
    return (synth, _lvis(c, t, lambda d: d.update(images=5)), f"{t}/l.json")


@case("LVIS polygon at 2e8")
def _lvis_polygon_at_2e8(c: Path, t: Path):
    return (synth, _lvis(c, t, _far_polygon(2e8)), "")


@case("LVIS polygon at 5e9", skipped="invalid_mask")
def _lvis_polygon_at_5e9(c: Path, t: Path):
    return (synth, _lvis(c, t, _far_polygon(5e9)), "")


@case("COCO bad bbox")
def _coco_bad_bbox(c: Path, t: Path):
    return (
        synth,
        _build_args(
            c,
            t,
            coco=_json_edit(
                c / "coco/annotations/instances_val2017.json",
                t / "i.json",
                lambda d: d["annotations"][0].update(bbox="x"),
            ),
        ),
        f"{t}/i.json: annotation",
    )


@case("matches.csv empty")
def _matches_csv_empty(c: Path, t: Path):
    return (synth, _build_args(c, t, matches=_write(t / "m.csv", "")), f"{t}/m.csv")


@case("matches.csv binary")
def _matches_csv_binary(c: Path, t: Path):
    return (synth, _build_args(c, t, matches=_write(t / "m.csv", b"\x00\xff" * 40)), f"{t}/m.csv")


@case("AVSBench metadata garbage")
def _avsbench_metadata_garbage(c: Path, t: Path):
    return (
        synth,
        _build_args(c, t, avsbench=_avsbench_with(c, t, "name,start\n\x00\n")),
        f"{t}/avsbench/Single-source/s4_meta_data.csv",
    )


@case("Open Images segmentation CSV")
def _open_images_segmentation_csv(c: Path, t: Path):
    return (
        synth,
        _openimages_args(
            c,
            t,
            _copy_openimages(
                c, t, "train-annotations-object-segmentation.csv", "MaskPath,ImageID\nx\n"
            ),
        ),
        f"{t}/openimages/train-annotations-object-segmentation.csv",
    )


@case("Open Images class MID")
def _open_images_class_mid(c: Path, t: Path):
    return (
        synth,
        _openimages_args(
            c,
            t,
            _copy_openimages(
                c, t, "oidv7-class-descriptions.csv", "LabelName,DisplayName\nnot a mid,Dog\n"
            ),
        ),
        f"{t}/openimages/oidv7-class-descriptions.csv:",
    )


@case("clips folder with link loops")
def _clips_folder_with_link_loops(c: Path, t: Path):
    return (synth, _build_args(c, t, clips=_loop_clips(c, t)), "")


@case("exclude-clips not text")
def _exclude_clips_not_text(c: Path, t: Path):
    return (
        synth,
        [*_build_args(c, t), "--exclude-clips", str(_write(t / "x.txt", b"\xff\xfe\xfa"))],
        f"{t}/x.txt",
    )


@case("missing clips folder")
def _missing_clips_folder(c: Path, t: Path):
    return (synth, _build_args(c, t, clips=t / "none"), f"{t}/none")


@case("silence level nan")
def _silence_level_nan(c: Path, t: Path):
    return (synth, [*_build_args(c, t), "--silence-db", "nan"], "--silence-db must be a finite")


# avs-synth inspect / match / review-matches / import / sample-corpus


@case("inspect a corrupt tar")
def _inspect_a_corrupt_tar(c: Path, t: Path):
    return (synth, ["inspect", str(_corrupt_tar(c, t))], f"{t}/shards/train-000000.tar")


@case("inspect a bad manifest")
def _inspect_a_bad_manifest(c: Path, t: Path):
    return (
        synth,
        ["inspect", str(_write(t / "s/manifest.json", "{").parent)],
        f"{t}/s/manifest.json",
    )


@case("match LVIS garbage")
def _match_lvis_garbage(c: Path, t: Path):
    return (
        synth,
        ["match", "--lvis", str(_write(t / "l.json", "{]")), "--out", str(t / "m.csv")],
        f"{t}/l.json",
    )


@case("match vggsound.csv binary")
def _match_vggsound_csv_binary(c: Path, t: Path):
    return (
        synth,
        [
            "match",
            "--vggsound-csv",
            str(_write(t / "v.csv", b"\xff\x00\xfe")),
            "--out",
            str(t / "m.csv"),
        ],
        f"{t}/v.csv",
    )


@case("review a missing table")
def _review_a_missing_table(c: Path, t: Path):
    return (synth, ["review-matches", "--matches", str(t / "none.csv"), "--list"], f"{t}/none.csv")


@case("review --import garbage")
def _review_import_garbage(c: Path, t: Path):
    return (
        synth,
        [
            "review-matches",
            "--matches",
            str(shutil.copy(c.parent / "matches.csv", t / "m.csv")),
            "--import",
            str(_write(t / "e.csv", "a,b\n\x00")),
        ],
        f"{t}/e.csv",
    )


@case("import: no annotations.csv")
def _import_no_annotations_csv(c: Path, t: Path):
    return (synth, ["import", "avs-synthetic", str(t), "--out", str(t / "o")], f"{t}")


@case("import: annotations.csv binary")
def _import_annotations_csv_binary(c: Path, t: Path):
    return (
        synth,
        [
            "import",
            "avs-synthetic",
            str(_write(t / "r/annotations.csv", b"\xff\xfe\x00").parent),
            "--out",
            str(t / "o"),
        ],
        f"{t}/r",
    )


@case("sample-corpus into a file")
def _sample_corpus_into_a_file(c: Path, t: Path):
    return (synth, ["sample-corpus", str(_write(t / "f", "x")), "--size", "tiny"], f"{t}/f")


# avs-train


@case("pretrain: manifest garbage")
def _pretrain_manifest_garbage(c: Path, t: Path):
    return (
        train,
        [
            "pretrain",
            "--shards",
            str(_write(t / "s/manifest.json", '{"splits": 3}').parent),
            "--out",
            str(t / "r"),
            "--random-init",
            "--max-steps",
            "1",
        ],
        f"{t}/s",
    )


@case("evaluate: checkpoint garbage")
def _evaluate_checkpoint_garbage(c: Path, t: Path):
    return (
        train,
        ["evaluate", "--ckpt", str(_ckpt(t, b"garbage")), "--avsbench", str(c / "avsbench")],
        f"{t}/model.pt",
    )


@case("evaluate: checkpoint a zip")
def _evaluate_checkpoint_a_zip(c: Path, t: Path):
    return (
        train,
        ["evaluate", "--ckpt", str(_zip_ckpt(t)), "--avsbench", str(c / "avsbench")],
        f"{t}/model.pt",
    )


@case("finetune: AVSBench metadata")
def _finetune_avsbench_metadata(c: Path, t: Path):
    return (
        train,
        [
            "finetune",
            "--config",
            "s4_pvtv2",
            "--avsbench",
            str(_avsbench_with(c, t, "\x00,\x01\n")),
            "--out",
            str(t / "r"),
            "--random-init",
            "--max-steps",
            "1",
            "--model",
            "autr_tiny",
        ],
        f"{t}/avsbench",
    )


@case("print-config: YAML garbage")
def _print_config_yaml_garbage(c: Path, t: Path):
    return (train, ["print-config", "--config", str(_write(t / "c.yaml", "a: [\n"))], f"{t}/c.yaml")


@case("print-config: unknown key")
def _print_config_unknown_key(c: Path, t: Path):
    return (train, ["print-config", "--set", "optim.lrr=1"], "optim.lrr")


@case("predict: picture not an image")
def _predict_picture_not_an_image(c: Path, t: Path):
    return (
        train,
        [
            "predict",
            "--ckpt",
            str(_ckpt(t, b"x")),
            str(_write(t / "f/000.jpg", b"not a jpeg").parent),
            "--audio",
            str(_write(t / "a.wav", b"RIFF")),
            "--out",
            str(t / "p"),
        ],
        f"{t}/",
    )


def _zip_ckpt(tmp: Path) -> Path:
    path = tmp / "model.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model/data.pkl", b"\x80\x02cos\nsystem\nq\x00.")
    return path


TALLY = {"tried": 0, "clean": 0, "crashes": 0, "hangs": 0, "escapes": 0}


@pytest.mark.timeout(240)
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line_or_skipped_and_counted(case, corpus, tmp_path) -> None:
    TALLY["tried"] += 1
    before = set(Path.cwd().iterdir())
    app, args, needle = case.make(corpus, tmp_path)
    result = runner.invoke(app, args)
    output = result.output
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        TALLY["crashes"] += 1
        raise AssertionError(f"{type(result.exception).__name__}: {result.exception}\n{output}")
    assert "Traceback" not in output and "Errno" not in output, output
    assert "<dict>" not in output and "KeyError" not in output, output
    if set(Path.cwd().iterdir()) != before:
        TALLY["escapes"] += 1
        raise AssertionError("the command wrote outside the folders it was given")
    if needle == "":  # the build goes through; what it could not use is counted
        assert result.exit_code == 0, output
        report = json.loads((tmp_path / "out/report.json").read_text())
        if case.skipped is not None:
            assert report["skipped"].get(case.skipped, 0) >= 1, report
    else:
        assert result.exit_code != 0, output
        errors = [line for line in output.splitlines() if line.startswith("error: ")]
        assert len(errors) == 1, output
        assert needle in errors[0], (needle, errors[0])
    TALLY["clean"] += 1


def test_tally(capsys) -> None:
    """The figures of the run (printed with -s); every case ran clean when they are all 0."""
    print(
        f"hostile CLI inputs: {TALLY['tried']} tried, {TALLY['clean']} handled cleanly, "
        f"{TALLY['crashes']} crashes, {TALLY['hangs']} hangs (pytest-timeout), "
        f"{TALLY['escapes']} escapes"
    )
    assert TALLY["crashes"] == 0 and TALLY["escapes"] == 0
