"""Property tests of the annotation parsers: any listing either parses exactly or its bad lines are reported by
file and line; never a bare library traceback, never a silently short or shifted data set."""
import math
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from lmkcore.data.source import BadInputError, Problems
from lmkcore.data.sources.mtfl import parse_mtfl_listing

NAME = st.from_regex(r"[A-Za-z0-9_]{1,12}\\[A-Za-z0-9_]{1,12}\.jpg", fullmatch=True)
COORD = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=32)
GOOD = st.tuples(NAME, st.lists(COORD, min_size=10, max_size=10), st.booleans())
BAD = st.one_of(
    st.tuples(NAME, st.lists(COORD, min_size=0, max_size=9)).map(lambda t: " ".join([t[0], *map(repr, t[1])])),
    st.tuples(NAME, st.lists(COORD, min_size=10, max_size=10), st.sampled_from(["nan", "inf", "x1", "1,5"]),
              st.integers(0, 9)).map(lambda t: " ".join([t[0], *(t[2] if i == t[3] else repr(v)
                                                                  for i, v in enumerate(t[1]))])),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"),
            min_size=1, max_size=40).filter(lambda s: s.strip() and len(s.split()) not in (11, 15)),
)


def good_line(t) -> str:
    name, coords, attributes = t
    return " ".join([name, *map(repr, coords), *(["1", "2", "1", "3"] if attributes else [])])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(GOOD.map(lambda t: ("good", t)), BAD.map(lambda b: ("bad", b))), min_size=1, max_size=12),
       st.sampled_from(["\n", "\r\n"]))
def test_an_mtfl_listing_parses_exactly_or_names_its_bad_lines(tmp_path_factory, lines, newline):
    path = tmp_path_factory.mktemp("mtfl") / "training.txt"
    text = [good_line(v) if kind == "good" else v for kind, v in lines]
    path.write_bytes(newline.join(text).encode("utf-8", errors="surrogatepass"))
    problems = Problems("skip")
    records = parse_mtfl_listing(path, problems)
    good = [(no, v) for no, (kind, v) in enumerate(lines, 1) if kind == "good"]
    assert [r[0] for r in records] == [v[0].replace("\\", "/") for _, v in good]  # none dropped, none shifted
    for (no, v), r in zip(good, records):
        np.testing.assert_allclose(r[1][:, :2], np.stack([v[1][:5], v[1][5:]], 1), rtol=1e-6)
        assert r[2] == f"{path}:{no}"
    bad_lines = [no for no, (kind, v) in enumerate(lines, 1) if kind == "bad"]
    assert [int(re.search(r":(\d+): ", m).group(1)) for m in problems.skipped] == bad_lines
    if bad_lines:
        with pytest.raises(BadInputError, match=re.escape(f"{path}:{bad_lines[0]}: ")):
            parse_mtfl_listing(path, Problems("raise"))


def test_non_utf8_bytes_and_a_truncated_last_line_are_named(tmp_path):
    path = tmp_path / "training.txt"
    path.write_bytes(b"a\\x.jpg " + b"1 " * 10 + b"\n\xff\xfe\\bad.jpg 1 2\nb\\y.jpg 1 2 3")
    problems = Problems("skip")
    records = parse_mtfl_listing(path, problems)
    assert [r[0] for r in records] == ["a/x.jpg"]
    assert [m.split(": ")[0] for m in problems.skipped] == [f"{path}:2", f"{path}:3"]
    assert all(math.isfinite(v) for v in records[0][1].ravel())
