"""The HTML run report, rendered by headless Chromium (Debian's ``chromium``)."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from labeling.cli import main
from labeling.pipeline.report import SECTIONS, calibration_bins, confusion_matrix, expected_calibration_error, render_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (see .ci/run)")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                  "--allow-file-access-from-files", "--no-first-run"]


class DomIndex(HTMLParser):
    """What the rendered DOM holds: sections with their headings, tables (rows), svgs and text."""

    def __init__(self):
        super().__init__()
        self.sections: dict[str, dict] = {}
        self.scripts = 0
        self._section: str | None = None
        self._depth = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self._section = attrs.get("id")
            self.sections[self._section] = {"rows": 0, "svg": 0, "text": "", "tables": []}
        elif tag == "script":
            self.scripts += 1
        elif self._section:
            info = self.sections[self._section]
            if tag == "svg":
                info["svg"] += 1
            elif tag == "table":
                info["tables"].append({"class": attrs.get("class", ""), "rows": 0})
            elif tag == "tr" and info["tables"]:
                info["tables"][-1]["rows"] += 1

    def handle_endtag(self, tag):
        if tag == "section":
            self._section = None

    def handle_data(self, data):
        if self._section:
            self.sections[self._section]["text"] += data


def _png_pixels(path: Path) -> tuple[int, int, bytes]:
    """Width, height and raw scanlines of an 8-bit PNG, checking its structure."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    pos, chunks = 8, {}
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        body = data[pos + 8 : pos + 8 + length]
        assert zlib.crc32(kind + body) == struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])[0]
        chunks.setdefault(kind, []).append(body)
        pos += 12 + length
    width, height, depth = struct.unpack(">IIB", chunks[b"IHDR"][0][:9])
    assert depth == 8
    return width, height, zlib.decompress(b"".join(chunks[b"IDAT"]))


@pytest.fixture(scope="module")
def youtube_report(recorded_youtube_run):
    config, result = recorded_youtube_run
    args = ["--config", config.base_dir + "/project.toml", "--set", f'project.store="{result.store_path}"']
    assert main(["report", result.run_id, *args]) == 0
    path = Path(result.store_path).parent / "reports" / f"{result.run_id}.html"
    assert path.is_file()
    return config, result, path


@needs_chromium
def test_youtube_report_renders_in_headless_chromium_with_every_section(youtube_report, tmp_path):
    _, result, path = youtube_report
    dom = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, "--dump-dom", path.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    index = DomIndex()
    index.feed(dom.stdout)
    assert list(index.sections) == [key for key, _ in SECTIONS]
    assert index.scripts == 0
    for key, title in SECTIONS:
        assert title in index.sections[key]["text"], key
    s = index.sections
    lf_table = next(t for t in s["lfs"]["tables"] if t["class"] == "lf-table")
    assert lf_table["rows"] == 1 + len(result.lfs)  # header + one row per LF
    for key in ("evaluation", "lfs", "confusion", "calibration"):
        assert s[key]["svg"] == 1, key
    assert result.run_id in s["lineage"]["text"] and result.dataset_version in s["lineage"]["text"]
    for slice_name in ("short_comment", "has_link", "long_comment"):
        assert slice_name in s["slices"]["text"]
    assert "train_test_leakage" in s["verification"]["text"]
    assert "No served traffic" in s["drift"]["text"]
    assert f"{result.metric('end model'):.3f}" in s["evaluation"]["text"]

    shot = tmp_path / "youtube_report.png"
    run = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--screenshot={shot}", "--window-size=1280,2400", path.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and shot.is_file(), run.stderr[-2000:]
    width, height, raw = _png_pixels(shot)
    assert (width, height) == (1280, 2400)
    assert len(set(raw[i : i + 3] for i in range(1, len(raw), 997 * 3))) > 20  # not a blank page
    print(f"\nreport {path}\nscreenshot {shot}")


def test_report_escapes_every_value(recorded_youtube_run):
    from labeling import RunStore

    _, result = recorded_youtube_run
    with RunStore(result.store_path) as store:
        run = store.get_run(result.run_id)
        documents = store.get_documents(result.run_id)
    evil = '<script>alert("x")</script>'
    run["project"] = evil
    run["lfs"][0]["name"] = "$\\alpha$ " + evil
    run["lf_stats"] = [{"split": "train", "lf": run["lfs"][0]["name"], "coverage": 0.5, "overlaps": 0.1,
                        "conflicts": 0.0, "accuracy": None, "seconds": 0.01}]
    documents["slices"][0]["slice"] = evil
    html = render_report(run, documents)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "$\\alpha$ &lt;script&gt;" in html  # math text printed literally in the SVG
    # Self-contained: nothing is fetched (namespace URIs like xmlns="http://www.w3.org/2000/svg" are names).
    assert re.findall(r'(?:src|href)\s*=\s*"(?!#)([^"]*)"', html) == []
    assert "url(http" not in html and "@import" not in html


def test_confusion_and_calibration_numbers():
    assert confusion_matrix([0, 0, 1, 1], [0, 1, 1, 1], 2).tolist() == [[1, 1], [0, 2]]
    bins = calibration_bins([[0.9, 0.1], [0.8, 0.2], [0.35, 0.65], [0.45, 0.55]], [0, 1, 1, 0])
    assert [(b["bin"], b["n"], b["accuracy"]) for b in bins] == [
        ("0.5-0.6", 1, 0.0), ("0.6-0.7", 1, 1.0), ("0.8-0.9", 1, 0.0), ("0.9-1.0", 1, 1.0)]
    assert expected_calibration_error(bins) == pytest.approx((0.55 + 0.35 + 0.8 + 0.1) / 4)


def test_report_json_output(youtube_report, capsys):
    config, result, path = youtube_report
    assert main(["report", result.run_id, "--config", config.base_dir + "/project.toml",
                 "--set", f'project.store="{result.store_path}"', "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"report": str(path)}


def test_end_model_selection_shows_each_option_and_its_se_old_records_too(recorded_youtube_run):
    import copy

    from labeling import RunStore

    _, result = recorded_youtube_run
    with RunStore(result.store_path) as store:
        run = store.get_run(result.run_id)
        documents = store.get_documents(result.run_id)
    selection = run["end_model"]["selection"]
    family = selection["stages"][0]
    html = render_report(run, documents)
    assert "one SE of the gap to the best" in html
    for option in family["candidates"]:
        cells = f'<td class="l">{option["name"]}</td><td>{option["dev_score"]:.3f}</td><td>{option["tolerance"]:.3f}</td>'
        assert cells in html
    # a run recorded before the paired rule: one SE per stage, shown on each of its options
    old = copy.deepcopy(run)
    for stage in old["end_model"]["selection"]["stages"]:
        stage["tolerance"] = 0.025
        for option in stage["candidates"]:
            del option["tolerance"]
    first = family["candidates"][0]
    assert f'<td class="l">{first["name"]}</td><td>{first["dev_score"]:.3f}</td><td>0.025</td>' in render_report(old, documents)


def test_baselines_per_class_recall_and_a_vanished_class_are_in_the_report(recorded_youtube_run):
    import copy

    from labeling import RunStore

    _, result = recorded_youtube_run
    with RunStore(result.store_path) as store:
        run = store.get_run(result.run_id)
        documents = store.get_documents(result.run_id)
    page = render_report(run, documents)
    # how each baseline was chosen, every option with its cross-validated score
    for key, chosen in run["end_model"]["baselines"].items():
        assert f"The {key} baseline: {chosen['note']}" in page and f'class="baseline-{key}"' in page
        first = chosen["candidates"][0]
        assert f'<td class="l">{first["name"]}</td><td>{first["cv_score"]:.3f}</td>' in page
    recall = run["end_model"]["class_recall"]
    ham = recall["per_class"]["ham"]
    assert 'class="class-recall"' in page and "vanishes" not in page
    served, reference = recall["served"], recall["reference"]  # the served predictor vs the label model
    assert (f'<td class="l">ham</td><td>{ham["support"]}</td><td>{ham["recall"][served]:.3f}</td>'
            f'<td>{ham["recall"][reference]:.3f}</td>') in page
    # a class the label model predicts on dev and the end model never does: a warning
    dropped = copy.deepcopy(run)
    warning = ("class 'spam' vanishes: the label model predicts it on 51 dev rows (recall 96.3% of its 54), "
               "the end model on none; project.metric = 'macro_f1' would weigh it")
    dropped["end_model"]["class_recall"].update(vanished=["spam"], warnings=[warning])
    assert '<p class="warn">Warning: class &#x27;spam&#x27; vanishes' in render_report(dropped, documents)
    # runs recorded before either existed still render
    old = copy.deepcopy(run)
    del old["end_model"]["baselines"], old["end_model"]["class_recall"]
    assert "class-recall" not in render_report(old, documents)
