import pytest

from memhil.errors import ConfigError
from memhil.units import format_duration, parse_duration, parse_size


@pytest.mark.parametrize("text,seconds", [
    ("6h", 21600.0), ("100ms", 0.1), ("100 ms", 0.1), ("1.5s", 1.5), ("1h 30min", 5400.0), ("2", 2.0),
    ("250us", 0.00025), ("1d", 86400.0), (".5s", 0.5), (3, 3.0),
])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text,fragment", [
    ("-5s", "negative"), ("6 parsecs", "unknown time unit"), ("", "empty"), ("soon", "cannot read"), (-1, "negative"),
])
def test_bad_durations_say_what_is_accepted(text, fragment):
    with pytest.raises(ConfigError) as err:
        parse_duration(text)
    assert fragment in str(err.value)
    assert "Hint:" in str(err.value)


@pytest.mark.parametrize("text,nbytes", [("4096", 4096), ("4 KiB", 4096), ("96MiB", 96 * 2**20), ("2 B", 2), (12, 12)])
def test_sizes(text, nbytes):
    assert parse_size(text) == nbytes


@pytest.mark.parametrize("text", ["4 furlongs", "lots", "-3"])
def test_bad_sizes(text):
    with pytest.raises(ConfigError):
        parse_size(text)


@pytest.mark.parametrize("text,suggest", [("4 KB", "write 4 KiB for 4096 bytes"), ("1kb", "KiB"), ("2MB", "2 MiB"), ("1 k", "KiB")])
def test_decimal_size_units_are_refused_not_guessed(text, suggest):
    with pytest.raises(ConfigError) as err:
        parse_size(text)
    assert "ambiguous" in str(err.value) and suggest in str(err.value)


def test_format_duration():
    assert format_duration(6 * 3600 + 61) == "6h 1m 1s"
    assert format_duration(6 * 3600 + 600) == "6h 10m 0s"
    assert format_duration(600) == "10m 0s"
    assert format_duration(0.25) == "250.000 ms"
    assert format_duration(1.5) == "1.500 s"


def test_format_sizes_in_binary_units():
    from memhil.units import format_bytes, format_size

    assert [format_size(n) for n in (512, 4096, 4608, 69632, 3 * 2**20 // 2)] == ["512 B", "4 KiB", "4.5 KiB", "68 KiB", "1.5 MiB"]
    assert format_bytes(69632) == "69,632 B (68 KiB)" and format_bytes(48) == "48 B" and format_bytes(None) == "-"


def test_frames_without_line_info_read_as_function_and_hex_address():
    from memhil.report.frametext import frame_text

    assert frame_text({"pc": "0x08001c3c", "function": "app_build_response", "file": None, "line": None}) == "app_build_response (0x08001c3c)"
    assert frame_text({"pc": 0x08001C3C, "function": "app_build_response", "offset": 0x3C}) == "app_build_response+0x3c (0x08001c3c)"
    assert frame_text({"pc": "0x08001c3c", "function": None, "file": None, "line": None}) == "?? (0x08001c3c)"
    assert frame_text({"pc": "0x08001c3c", "function": "f", "file": "a.c", "line": 3}) == "f (a.c:3)"


def test_precise_durations_keep_milliseconds():
    assert format_duration(8 * 3600 - 0.1, precise=True) == "7h 59m 59.900s"
    assert format_duration(61.25, precise=True) == "1m 1.250s"
    assert format_duration(1.5, precise=True) == "1.500 s"
