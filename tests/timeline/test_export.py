"""Exports: massif read back by valgrind's ms_print, CSV, PNG with leak markers, HTML."""

from __future__ import annotations

import base64
import csv
import shutil
import subprocess

import pytest

from memhil.timeline import TimelineReader
from memhil.timeline.export import leak_markers, plot_png, to_csv, to_html, to_massif
from timeline_synth import SITE_LEAK, SITE_WORK


class Frame:
    def __init__(self, function, file, line):
        self.function, self.file, self.line = function, file, line


class FakeResolver:
    """Maps the synthetic sites to file:line as an ELF symbolizer would."""

    table = {SITE_LEAK: Frame("net_cache_add", "src/net/cache.c", 88), SITE_WORK: Frame("work_run", "src/app/work.c", 12)}

    def frame(self, pc, is_return_address=True):
        return self.table.get(pc, Frame(None, None, None))


@pytest.fixture(scope="module")
def reader(soak_log):
    return TimelineReader(soak_log[0], progress=False)


def test_ms_print_reads_the_massif_file_and_shows_the_peak(reader, tmp_path):
    assert shutil.which("ms_print"), "valgrind's ms_print is installed by the setup script"
    out = tmp_path / "massif.out.memhil"
    n = to_massif(reader, out, cmd="soak.elf", resolver=FakeResolver())
    assert n == 100  # downsampled from thousands of intervals, the peak kept
    proc = subprocess.run(["ms_print", str(out)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    peak_t, peak_b = reader.peak()
    assert "Command:            soak.elf" in proc.stdout
    assert f"{peak_b:,}" in proc.stdout and f"{peak_t:,}" in proc.stdout
    assert "src/net/cache.c:88" in proc.stdout or "work.c:12" in proc.stdout
    assert "(peak)" in proc.stdout


def test_csv_has_time_total_and_module_columns(reader, tmp_path):
    out = tmp_path / "timeline.csv"
    rows = to_csv(reader, out, module_names={3: "NET"})
    table = list(csv.reader(out.open()))
    assert table[0] == ["t_ms", "total", "module_1", "NET", "module_4"]
    assert rows == len(table) - 1 == len(reader.all_time_size())
    assert [(int(r[0]), int(r[1])) for r in table[1:]] == reader.all_time_size()
    assert [int(r[3]) for r in table[1:]] == [v for _, v in reader.all_time_size(3)]


def test_leak_marker_starts_where_the_leak_site_first_allocated(reader, soak):
    first_leak = min(e.t_us for e in soak if e.stack[:1] == (SITE_LEAK,)) // 1000
    by_pc = leak_markers(reader, [SITE_LEAK])
    by_line = leak_markers(reader, ["cache.c:88"], resolver=FakeResolver())
    assert [(m.t_ms, m.label) for m in by_pc] == [(first_leak, f"{SITE_LEAK:#010x}")]
    assert [(m.t_ms, m.label) for m in by_line] == [(first_leak, "src/net/cache.c:88")]
    assert leak_markers(reader, ["nowhere.c:1"], resolver=FakeResolver()) == []


def test_png_is_written_with_a_leak_marker(reader, tmp_path):
    out = tmp_path / "timeline.png"
    markers = plot_png(reader, out, leak_sites=["src/net/cache.c:88"], resolver=FakeResolver())
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert len(markers) == 1 and markers[0].t_ms >= 6 * 3600_000


def test_html_embeds_the_plot_and_lists_top_sites(reader, tmp_path):
    out = tmp_path / "timeline.html"
    report = to_html(reader, out, leak_sites=[SITE_LEAK], resolver=FakeResolver())
    page = out.read_text()
    b64 = page.split("data:image/png;base64,")[1].split('"')[0]
    assert base64.b64decode(b64)[:4] == b"\x89PNG"
    assert report.rows[0].site in page and "src/app/work.c:12" in page
    from memhil.units import format_bytes

    assert f"{format_bytes(reader.peak()[1])} of node bytes" in page
    assert "<tr class='leak'><td>src/net/cache.c:88</td><td>net_cache_add</td>" in page  # the leak site has its own row, not only the top sites


def test_html_embeds_a_picture_already_drawn_as_plot_png_draws_it(reader, tmp_path):
    import io

    drawn = io.BytesIO()
    plot_png(reader, drawn, leak_sites=[SITE_LEAK], resolver=FakeResolver(), title="t")
    given, own = tmp_path / "given.html", tmp_path / "own.html"
    to_html(reader, given, leak_sites=[SITE_LEAK], resolver=FakeResolver(), title="t", picture=drawn.getvalue())
    to_html(reader, own, leak_sites=[SITE_LEAK], resolver=FakeResolver(), title="t")

    def picture(page):
        return base64.b64decode(page.read_text().split("data:image/png;base64,")[1].split('"')[0])

    assert picture(given) == drawn.getvalue() == picture(own)  # the same plot either way: nothing differs but the work
    assert given.read_text() == own.read_text()
