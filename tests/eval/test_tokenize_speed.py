"""The tokenize speed comparison measures what it says (no timing assertions: speed is not unit-tested)."""
import json

from eval.tokenize_speed import compare_tokenize, photo_corpus, write_tokenize_report


def test_photo_corpus_links_every_offline_photo(tmp_path):
    from zoo.data.offline import photo_paths, skimage_photos

    files = photo_corpus(tmp_path / "photos", copies=2)
    per_copy = len(photo_paths()) + len(skimage_photos())
    assert len(files) == 2 * per_copy and all(f.resolve().is_file() for f in files)


def test_compare_tokenize_reports_three_rates(tmp_path):
    row = compare_tokenize("titok_tiny", pretrained=False, copies=1, repeats=1, threads=1, batch_size=8, cli_files=1)
    assert row["files"] > 10 and row["loop_items_per_s"] > 0 and row["tokenize_items_per_s"] > 0
    assert row["loop_cpu_ms_per_item"] > 0 and row["tokenize_cpu_ms_per_item"] > 0
    assert row["cli_items_per_s"] > 0
    assert row["speedup_vs_loop"] == row["tokenize_items_per_s"] / row["loop_items_per_s"]
    md = write_tokenize_report(row, tmp_path).read_text()
    assert "titok_tiny" in md and json.loads((tmp_path / "tokenize_speed.json").read_text())["files"] == row["files"]
