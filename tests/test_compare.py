"""`python -m ultralytics_fss.compare`: variant parsing, the paired statistics, and a real tiny comparison that
resumes instead of retraining."""

from __future__ import annotations

import csv
import math

import pytest

from ultralytics_fss.evidence.compare import BUILTIN, paired, parse_variant, run_all, summary_table


def test_variants_parse_and_bad_ones_are_named():
    assert parse_variant("tal") == ("tal", None) and parse_variant("atss") == ("atss", {"fss_assigner": "atss"})
    assert parse_variant("q5:fss_q=5,fss_rescue=True") == ("q5", {"fss_q": 5, "fss_rescue": True})
    for spec, words in [("nope", "unknown variant 'nope'"), ("x:q=5", "'q=5' is not fss_key=value"),
                        ("x:fss_q=0", "fss_q=0"), ("x:fss_nope=1", "fss_nope")]:  # fmt: skip
        with pytest.raises(ValueError, match=words):
            parse_variant(spec)
    assert set(BUILTIN) == {"tal", "fss", "sel", "sel+prior", "maxiou", "atss", "simota", "gfl"}
    assert parse_variant("gfl")[1] == {"fss_assigner": "atss", "fss_cls": "qfl", "fss_target": "iou"}


def test_paired_difference_and_interval():
    base, other = {0: 0.30, 1: 0.32, 2: 0.31}, {0: 0.33, 1: 0.34, 2: 0.34}
    mean, half = paired(other, base)
    d = [0.03, 0.02, 0.03]
    sd = math.sqrt(sum((x - sum(d) / 3) ** 2 for x in d) / 2)
    assert mean == pytest.approx(sum(d) / 3) and half == pytest.approx(4.303 * sd / math.sqrt(3))
    assert math.isnan(paired({0: 0.4}, base)[1]) and paired({5: 0.4}, base) is None
    rows = [dict(variant=v, seed=s, AP=vals[s]) for v, vals in (("tal", base), ("fss", other)) for s in vals]
    table = summary_table(rows, "AP")
    assert "| fss | 0.330 | 0.340 | 0.340 | 0.337 +- 0.006 | +2.7 +- 1.4 |" in table


def test_tiny_comparison_writes_summary_and_resumes(tiny_data, tmp_path):
    args = dict(model="yolo11n.yaml", epochs=1, imgsz=64, batch=4, device="cpu", workers=0)
    rows = run_all(tmp_path, str(tiny_data), ["tal", "q3:fss_q=3"], [0], args)
    assert [r["variant"] for r in rows] == ["tal", "q3"]
    with open(tmp_path / "summary.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert [t["variant"] for t in table] == ["tal", "q3"] and {"AP75", "ARl", "mAP50-95", "pos_per_gt"} <= set(table[0])
    assert (tmp_path / "q3-seed0" / "coco" / "coco_metrics.json").is_file()
    stamp = (tmp_path / "results" / "q3-seed0.json").stat().st_mtime
    again = run_all(tmp_path, str(tiny_data), ["tal", "q3:fss_q=3"], [0], args)  # everything done: nothing trains
    assert (tmp_path / "results" / "q3-seed0.json").stat().st_mtime == stamp and again == rows


@pytest.mark.parametrize(
    "args, words",
    [
        (["--variants", "tal", "bogus"], "unknown variant 'bogus'"),
        (["nokey=1"], "'nokey=1' is not an Ultralytics train argument"),
        (["fss_q=3"], "fss_\\* keys go in a variant"),
        (["--model", "yolo11n-cls.yaml"], "is a classify model; FSS trains detect, obb, segment and pose"),
        (["--model", "yolo11n-obb.yaml", "--variants", "tal", "atss"], "\\['atss'\\] assign axis-aligned boxes"),
    ],
)
def test_command_line_refuses_bad_input_before_training(tmp_path, capsys, args, words):
    import re

    from ultralytics_fss.compare import main

    with pytest.raises(SystemExit) as e:
        main(["--data", "data.yaml", "--project", str(tmp_path / "p"), *args])
    assert e.value.code == 2 and not (tmp_path / "p").exists()
    assert re.search(words, capsys.readouterr().err)
