import pytest

from memhil.errors import ConfigError
from memhil.modules import ModuleMap


def test_names_and_ids():
    m = ModuleMap()
    assert m.id("NET") == 1 and m.id("net") == 1 and m.id("3") == 3 and m.id(0x20) == 32 and m.id("0x1f") == 31
    assert m.name(2) == "FS" and m.name(9) == "9"


@pytest.mark.parametrize("bad", ["WIFI", "33", -1, "1.5", True])
def test_unknown_or_out_of_range_modules_say_what_is_accepted(bad):
    with pytest.raises(ConfigError) as err:
        ModuleMap().id(bad)
    assert "0 to 32" in str(err.value)


def test_parse_mapping():
    m = ModuleMap.parse("RADIO=5, gps=6")
    assert m.id("radio") == 5 and m.id("GPS") == 6
    for spec in ("RADIO", "RADIO=x", "RADIO=40"):
        with pytest.raises(ConfigError):
            ModuleMap.parse(spec)
