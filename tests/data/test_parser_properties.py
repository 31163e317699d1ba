"""Property tests of the annotation parsers other than MTFL (CelebA / MAFL tables, CUB tables, 300-W `.pts`,
CSV listings, Human3.6M and LSP `.mat` files) and of the store writer and reader.

Random and malformed lines, counts, encodings (BOM, CRLF, bytes that are not UTF-8), NaN and huge values,
truncated files: each either parses exactly (the values as written, none dropped, none shifted) or is reported
as the workbook's error naming file and line (`BadInputError`, `StoreError`); never a bare library traceback,
never a silently short or shifted data set. (MTFL listings: `test_listing_properties.py`.)
"""
from __future__ import annotations

import csv
import io
import math
import re

import h5py
import numpy as np
import pytest
import scipy.io
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from lmkcore.data.source import BadInputError, Problems, Sample, SourceInfo
from lmkcore.data.sources.celeba import read_celeba_table
from lmkcore.data.sources.common import csv_rows
from lmkcore.data.sources.cub import PARTS, _table
from lmkcore.data.sources.h36m import read_keypoints_2d
from lmkcore.data.sources.lsp import read_joints
from lmkcore.data.sources.pts300w import read_pts
from lmkcore.data.store import ATTRS, LandmarkStore, StoreError, open_store, store_info, write_store

QUIET = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]  # tmp_path_factory is fine; 2 busy cores are slow
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=QUIET)

# --- shared strategies --------------------------------------------------------------------------------------

# every float32 (tiny, huge: up to 3.4e38) written so that it reads back exactly; NaN and inf written as such
F32 = st.floats(width=32, allow_nan=False, allow_infinity=False).map(float)
VALUE = st.one_of(F32, F32, F32, st.sampled_from([math.nan, math.inf, -math.inf]))
WRITE = st.sampled_from([repr, "{:.9g}".format, "{:.9e}".format,  # 9 significant digits: exact for a float32
                         lambda v: repr(v) if repr(v).startswith("-") else "+" + repr(v)])
# tokens that are no float32: not numbers, or numbers beyond float32's range (a cast would make them inf)
NOT_A_FLOAT32 = st.sampled_from(["x1", "1,5", "0x10", "--1", "1.0.0", "nan%", "1e39", "-1e400", "3.5e38", "1e",
                                 "\ufffd", "1\udcff", "\udcc3\udca9"])  # \udcXX: the byte XX, not UTF-8 here
ASCII_NAME = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}\.jpg", fullmatch=True)
# names with any letters (accents, CJK, ...), never whitespace (the separator) nor a BOM (an encoding mark)
NAME = st.one_of(ASCII_NAME, st.text(st.characters(whitelist_categories=("L", "N", "P", "S"),
                                                   blacklist_characters="\ufeff"), min_size=1, max_size=10))
NEWLINE = st.sampled_from(["\n", "\r\n"])
BLANK = st.sampled_from(["", "  ", "\t"])


def number(v: float, write) -> str:
    return write(v) if math.isfinite(v) else {math.inf: "inf", -math.inf: "-inf"}.get(v, "nan")


def f32(values) -> np.ndarray:
    return np.asarray(values, np.float64).astype(np.float32)


def lines_of(skipped: list[str]) -> list[int]:
    """The line numbers that the `file:line: reason` messages name, in order."""
    return [int(re.match(r".*?:(\d+): ", m).group(1)) for m in skipped]


def encode(lines: list[str], newline: str, bom: bool, final_newline: bool = True) -> bytes:
    """The file's bytes; lone surrogates \\udc80-\\udcff stand for bytes that are not UTF-8."""
    text = newline.join(lines) + (newline if final_newline else "")
    return (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8", errors="surrogateescape")


# --- CelebA / MAFL tables: count line, header line, `name v1 ... vn` ----------------------------------------

HEADERS = {10: "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x "
               "rightmouth_y",
           4: "image_id x_1 y_1 width height"}


@st.composite
def celeba_rows(draw, n_values: int):
    """[(kind, line text, name, values)]: good rows (unique names), bad ones (wrong field count, a token that is
    no float32, a name listed twice, random text) and blank lines."""
    rows, names = [], set()
    for _ in range(draw(st.integers(1, 10))):
        kind = draw(st.sampled_from(["good", "good", "good", "fields", "token", "twice", "text", "blank"]))
        if kind == "twice" and not names:
            kind = "good"
        if kind == "blank":
            rows.append(("blank", draw(BLANK), None, None))
            continue
        name = draw(NAME.filter(lambda n: n not in names)) if kind != "twice" else draw(st.sampled_from(sorted(names)))
        values = draw(st.lists(VALUE, min_size=n_values, max_size=n_values))
        write = draw(WRITE)
        tokens = [name] + [number(v, write) for v in values]
        if kind == "fields":  # too few or too many values
            m = draw(st.integers(0, n_values + 4).filter(lambda m: m != n_values))
            tokens = [name] + (tokens[1:] * 2)[:m]
        elif kind == "token":
            tokens[draw(st.integers(1, n_values))] = draw(NOT_A_FLOAT32)
        elif kind == "text":
            text = draw(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\ufeff"),
                                min_size=1, max_size=30))
            assume(text.strip() and len(text.split()) != n_values + 1)
            tokens = [text]
        sep = draw(st.sampled_from([" ", "  ", "\t", " \t "]))
        rows.append((kind, sep.join(tokens), name, values))
        if kind == "good":
            names.add(name)
    return rows


@SETTINGS
@given(st.sampled_from([10, 4]), st.data(), NEWLINE, st.booleans())
def test_a_celeba_table_parses_exactly_or_names_its_bad_lines(tmp_path_factory, n_values, data, newline, bom):
    rows = data.draw(celeba_rows(n_values))
    path = tmp_path_factory.mktemp("celeba") / "list_landmarks_align_celeba.txt"
    count = sum(kind != "blank" for kind, *_ in rows)
    path.write_bytes(encode([str(count), HEADERS[n_values]] + [line for _, line, _, _ in rows], newline, bom))
    problems = Problems("skip")
    table = read_celeba_table(path, n_values, problems)
    good = [(no, name, values) for no, (kind, _, name, values) in enumerate(rows, 3) if kind == "good"]
    assert list(table) == [name for _, name, _ in good]  # none dropped, none shifted, in order
    for no, name, values in good:
        got, where = table[name]
        assert where == f"{path}:{no}"
        np.testing.assert_array_equal(got, f32(values))  # exactly as written, NaN and inf included
        assert got.dtype == np.float32
    bad = [no for no, (kind, *_) in enumerate(rows, 3) if kind not in ("good", "blank")]
    assert lines_of(problems.skipped) == bad
    assert all(m.startswith(f"{path}:") for m in problems.skipped)
    if bad:
        with pytest.raises(BadInputError, match=re.escape(f"{path}:{bad[0]}: ")):
            read_celeba_table(path, n_values, Problems("raise"))
    else:
        assert list(read_celeba_table(path, n_values, Problems("raise"))) == list(table)


@SETTINGS
@given(st.sampled_from([10, 4]), st.lists(st.tuples(ASCII_NAME, st.lists(F32, min_size=10, max_size=10)),
                                          min_size=1, max_size=6, unique_by=lambda t: t[0]),
       st.sampled_from(["ok", "no count", "no header", "neither", "wrong count", "not a count"]),
       st.sampled_from(["1 entries", "²", "-3", "3.0", "x", "٣"]), st.integers(0, 20))
def test_a_celeba_table_without_its_count_or_header_line_loses_no_row_silently(
        tmp_path_factory, n_values, rows, damage, not_a_count, wrong):
    path = tmp_path_factory.mktemp("celeba") / "list_bbox_celeba.txt"
    data = [f"{name} " + " ".join(repr(v) for v in values[:n_values]) for name, values in rows]
    count = {"wrong count": str(wrong), "not a count": not_a_count}.get(damage, str(len(rows)))
    assume(damage != "wrong count" or wrong != len(rows))
    head = {"ok": [count, HEADERS[n_values]], "no count": [HEADERS[n_values]], "no header": [count],
            "neither": [], "wrong count": [count, HEADERS[n_values]], "not a count": [count, HEADERS[n_values]]}[damage]
    path.write_text("\n".join(head + data) + "\n", encoding="utf-8")
    problems = Problems("skip")
    table = read_celeba_table(path, n_values, problems)
    named = set(lines_of(problems.skipped))
    assert all(m.startswith(f"{path}:") for m in problems.skipped)
    first_row = len(head) + 1
    for no, (name, values) in enumerate(rows, first_row):  # every row: read exactly where it is, or named
        if name in table:
            assert table[name][1] == f"{path}:{no}"
            np.testing.assert_array_equal(table[name][0], f32(values[:n_values]))
        else:
            assert no in named, (no, problems.skipped)
    assert set(table) <= {name for name, _ in rows}  # nothing made up (the header's first word is no image)
    if damage == "ok":
        assert problems.skipped == [] and list(table) == [name for name, _ in rows]
    else:  # the damage itself is named, at line 1 or 2
        assert {1, 2} & set(lines_of(problems.skipped)), problems.skipped
        with pytest.raises(BadInputError, match=re.escape(f"{path}:") + "[12]: "):
            read_celeba_table(path, n_values, Problems("raise"))


@SETTINGS
@given(st.lists(st.tuples(ASCII_NAME, st.lists(F32, min_size=4, max_size=4)), min_size=1, max_size=6,
                unique_by=lambda t: t[0]), st.data())
def test_a_truncated_celeba_table_is_read_as_far_as_it_goes_and_the_loss_is_named(tmp_path_factory, rows, data):
    path = tmp_path_factory.mktemp("celeba") / "list_bbox_celeba.txt"
    full = "\n".join([str(len(rows)), HEADERS[4]] + [f"{n} " + " ".join(map(repr, v)) for n, v in rows]) + "\n"
    cut = data.draw(st.integers(0, len(full)))
    text = full[:cut]
    path.write_text(text, encoding="utf-8")
    problems = Problems("skip")
    table = read_celeba_table(path, 4, problems)
    written = text.splitlines()
    named = lines_of(problems.skipped)
    for no, (name, values) in enumerate(rows, 3):
        if name in table:  # read where it is, exactly as the (possibly cut) line says
            assert table[name][1] == f"{path}:{no}"
            as_written = written[no - 1].split()[1:]
            np.testing.assert_array_equal(table[name][0], f32([float(t) for t in as_written]))
            if no < len(written) or text.endswith("\n"):  # a whole line: the value written
                np.testing.assert_array_equal(table[name][0], f32(values))
        else:  # cut: the line is named, or the count line says rows are missing
            assert no in named or 1 in named, (no, problems.skipped)
    if cut < len(full) - 1:  # something lost: said
        assert problems.skipped or (len(table) == len(rows) and not text.endswith("\n")), problems.skipped


def test_a_celeba_source_names_the_line_of_a_nan_or_infinite_landmark(tmp_path):
    """The table keeps NaN / inf as written; the source reports those faces by file and line, and keeps huge
    finite float32 values (whether they lie on the image is `check_bounds`' business when images load)."""
    from lmkcore.data.sources import CelebA

    (tmp_path / "img_align_celeba").mkdir()
    rows = {"a.jpg": ["1"] * 10, "b.jpg": ["1"] * 9 + ["nan"], "c.jpg": ["3.4e38"] * 10, "d.jpg": ["-inf"] + ["1"] * 9,
            "e.jpg": ["1e39"] + ["1"] * 9}
    (tmp_path / "list_landmarks_align_celeba.txt").write_text(
        f"{len(rows)}\n{HEADERS[10]}\n" + "".join(f"{n} {' '.join(v)}\n" for n, v in rows.items()))
    src = CelebA(tmp_path, on_bad="skip")
    assert src.names == ["a.jpg", "c.jpg"]
    problems = sorted(src.listing_problems, key=lambda m: lines_of([m]))  # the table's own first, then the faces'
    assert lines_of(problems) == [4, 6, 7]
    assert "non-finite" in problems[0] and "non-finite" in problems[1] and "beyond the float32 range" in problems[2]
    np.testing.assert_array_equal(src.records[1][1][:, :2], np.full((5, 2), np.float32(3.4e38)))


# --- CUB text tables -----------------------------------------------------------------------------------------

TOKEN = st.text(st.characters(blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc"), blacklist_characters="\ufeff"),
                min_size=1, max_size=8).filter(lambda t: len(t.split()) == 1 and t.split()[0] == t)


@SETTINGS
@given(st.sampled_from([2, 5]), st.lists(st.one_of(
    st.lists(TOKEN, min_size=1, max_size=7).map(lambda f: ("fields", f)), st.just(("blank", []))),
    min_size=1, max_size=12), NEWLINE, st.booleans(), st.sampled_from([" ", "\t", "  "]))
def test_a_cub_table_parses_exactly_or_names_its_bad_lines(tmp_path_factory, n_fields, lines, newline, bom, sep):
    path = tmp_path_factory.mktemp("cub") / "images.txt"
    path.write_bytes(encode([sep.join(f) for _, f in lines], newline, bom, final_newline=False))
    problems = Problems("skip")
    out = _table(path, n_fields, problems)
    good = [(f"{path}:{no}", f) for no, (kind, f) in enumerate(lines, 1) if kind == "fields" and len(f) == n_fields]
    assert out == good  # the fields as written, in order, with their lines
    bad = [no for no, (kind, f) in enumerate(lines, 1) if kind == "fields" and len(f) != n_fields]
    assert lines_of(problems.skipped) == bad
    if bad:
        with pytest.raises(BadInputError, match=re.escape(f"{path}:{bad[0]}: expected {n_fields} fields")):
            _table(path, n_fields, Problems("raise"))


@settings(max_examples=30, deadline=None, suppress_health_check=QUIET)
@given(st.integers(1, 3), st.data())
def test_a_truncated_cub_part_file_never_leaves_a_bird_with_parts_missing(tmp_path_factory, n_images, data):
    """Whatever part of `parts/part_locs.txt` is cut off, every bird is kept with all 15 parts as written, or
    named in the problems."""
    from lmkcore.data.sources import CUB

    root = tmp_path_factory.mktemp("cub")
    (root / "parts").mkdir()
    (root / "images").mkdir()
    (root / "images.txt").write_text("".join(f"{i} a/{i}.jpg\n" for i in range(1, n_images + 1)))
    (root / "parts" / "parts.txt").write_text("".join(f"{k + 1} {p.replace('_', ' ')}\n" for k, p in enumerate(PARTS)))
    (root / "bounding_boxes.txt").write_text("".join(f"{i} 1.0 2.0 30.0 40.0\n" for i in range(1, n_images + 1)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    xy = rng.uniform(1, 30, (n_images, 15, 2)).round(2)
    vis = rng.integers(0, 2, (n_images, 15))
    locs = "".join(f"{i + 1} {k + 1} {xy[i, k, 0]:.2f} {xy[i, k, 1]:.2f} {vis[i, k]}\n"
                   for i in range(n_images) for k in range(15))
    cut = data.draw(st.integers(0, len(locs)))
    (root / "parts" / "part_locs.txt").write_text(locs[:cut])
    src = CUB(root, on_bad="skip")
    kept = {name: kp for name, kp, _ in src.records}
    for i in range(1, n_images + 1):
        if f"a/{i}.jpg" in kept:
            want = np.where(vis[i - 1, :, None] > 0, xy[i - 1] - 1.0, xy[i - 1])
            np.testing.assert_allclose(kept[f"a/{i}.jpg"][:, :2], want, atol=1e-5)
            np.testing.assert_array_equal(kept[f"a/{i}.jpg"][:, 2], vis[i - 1])
        else:
            assert any(f"image {i} has " in m and m.startswith(str(root / "parts" / "part_locs.txt"))
                       for m in src.listing_problems), src.listing_problems
    if cut == len(locs):
        assert len(kept) == n_images and not src.listing_problems


# --- 300-W .pts ----------------------------------------------------------------------------------------------

PTS_DAMAGE = ["none", "drop point", "add point", "token", "three fields", "no close", "no open", "after close",
              "declared"]


@SETTINGS
@given(st.integers(1, 8), st.data(), st.sampled_from(PTS_DAMAGE), NEWLINE, st.booleans(),
       st.sampled_from(["full", "n_points only", "none"]))
def test_a_pts_file_parses_exactly_or_names_its_bad_line(tmp_path_factory, n, data, damage, newline, bom, header):
    xy = data.draw(st.lists(st.tuples(VALUE, VALUE), min_size=n, max_size=n))
    write = data.draw(WRITE)
    points = [data.draw(st.sampled_from(["{} {}", "{}\t{}", " {}   {} "])).format(number(x, write), number(y, write))
              for x, y in xy]
    head = {"full": ["version: 1", f"n_points:  {n}"], "n_points only": [f"n_points: {n}"], "none": []}[header]
    if damage == "declared":
        head = ["version: 1", f"n_points: {data.draw(st.integers(0, 70).filter(lambda k: k != n))}"]
    i = data.draw(st.integers(0, n - 1))
    if damage == "drop point":
        del points[i]
    elif damage == "add point":
        points.insert(i, "1 2")
    elif damage == "token":
        points[i] = f"{data.draw(NOT_A_FLOAT32)} 1" if data.draw(st.booleans()) else f"1 {data.draw(NOT_A_FLOAT32)}"
    elif damage == "three fields":
        points[i] += " 0"
    lines = head + [data.draw(BLANK)] * data.draw(st.integers(0, 1)) + ["{"] + points + ["}"]
    if damage == "no close":
        lines.remove("}")
    elif damage == "no open":
        lines.remove("{")
    elif damage == "after close":
        lines += data.draw(st.sampled_from([["1 2"], ["{", "1 2", "}"], ["x"]]))
    lines += [""] * data.draw(st.integers(0, 2))
    path = tmp_path_factory.mktemp("w300") / "image_0001.pts"
    path.write_bytes(encode(lines, newline, bom))
    problems = Problems("skip")
    got = read_pts(path, problems, n)
    if damage == "none":
        assert problems.skipped == []
        np.testing.assert_array_equal(np.asarray(got), f32(xy))  # exactly as written, NaN, inf, 3.4e38 included
        return
    if damage in ("no close", "no open"):
        expected = 1
    elif damage == "after close":
        expected = lines.index("}") + 2  # the line after the brace
    else:
        brace = lines.index("{") + 1
        expected = brace + 1 + i if damage in ("token", "three fields") else brace
    assert got is None and lines_of(problems.skipped) == [expected], problems.skipped
    assert problems.skipped[0].startswith(f"{path}:{expected}: ")
    with pytest.raises(BadInputError, match=re.escape(f"{path}:{expected}: ")):
        read_pts(path, Problems("raise"), n)


@SETTINGS
@given(st.lists(st.tuples(F32, F32), min_size=1, max_size=8), st.data())
def test_a_truncated_pts_file_parses_exactly_or_names_a_line(tmp_path_factory, xy, data):
    path = tmp_path_factory.mktemp("w300") / "image_0001.pts"
    full = "\n".join(["version: 1", f"n_points: {len(xy)}", "{"] + [f"{x!r} {y!r}" for x, y in xy] + ["}"]) + "\n"
    cut = data.draw(st.integers(0, len(full)))
    path.write_text(full[:cut])
    problems = Problems("skip")
    got = read_pts(path, problems, len(xy))
    if got is None:
        assert len(problems.skipped) == 1 and re.match(re.escape(str(path)) + r":\d+: ", problems.skipped[0])
    else:
        assert problems.skipped == [] and "}" in full[:cut]
        np.testing.assert_array_equal(np.asarray(got), f32(xy))


# --- CSV listings (AFLW_M facedata_cropped.csv, Frames keypoint csv) -----------------------------------------

FIELD = st.lists(st.one_of(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufeff"),
                           st.sampled_from([",", '"', "\n", "\r\n", "\r", "\udcff"])), max_size=8).map("".join)


def csv_text(row: list[str], terminator: str) -> str:
    """The row as a CSV writer writes it (quoting all fields when one holds a \\r: Python 3.11's writer leaves
    a field with a lone \\r unquoted under lineterminator="\\n", which no reader can tell from a line break)."""
    out = io.StringIO()
    quoting = csv.QUOTE_ALL if any("\r" in f for f in row) else csv.QUOTE_MINIMAL
    csv.writer(out, lineterminator=terminator, quoting=quoting).writerow(row)
    return out.getvalue()


@SETTINGS
@given(st.lists(FIELD.filter(lambda f: "\udcff" not in f), min_size=1, max_size=5), st.data(), NEWLINE, st.booleans())
def test_a_csv_listing_parses_exactly_or_names_its_bad_rows(tmp_path_factory, header, data, newline, bom):
    h = len(header)
    rows = data.draw(st.lists(st.one_of(st.lists(FIELD, min_size=h, max_size=h),
                                        st.lists(FIELD, min_size=1, max_size=h + 2), st.just(None)), max_size=10))
    path = tmp_path_factory.mktemp("csv") / "facedata_cropped.csv"
    text = csv_text(header, newline)
    starts = []
    for row in rows:
        starts.append(1 + len(re.findall(r"\r\n|\r|\n", text)))
        text += newline if row is None else csv_text(row, newline)
    if data.draw(st.booleans()):
        text = text[: -len(newline)]
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8", errors="surrogateescape"))
    problems = Problems("skip")
    got_header, body = csv_rows(path, problems)
    got = list(body)
    assert got_header == header
    read = [r if r is None else [f.replace("\udcff", "\ufffd") for f in r] for r in rows]  # not UTF-8: U+FFFD
    blank = [r is None for r in read]
    good = [(f"{path}:{no}", r) for no, r, b in zip(starts, read, blank) if not b and len(r) == h]
    assert got == good  # every field as written (commas, quotes, line breaks), each row at its first line
    bad = [no for no, r, b in zip(starts, read, blank) if not b and len(r) != h]
    assert lines_of(problems.skipped) == bad
    if bad:
        with pytest.raises(BadInputError, match=re.escape(f"{path}:{bad[0]}: ")):
            list(csv_rows(path, Problems("raise"))[1])


@pytest.mark.parametrize("tail,line", [
    ('"an unclosed quote,1\n3,4\n', 3),
    ('"a"b,1\n', 3),
    ('"' + "x" * 200_000 + '",1\n', 3),  # a field over the csv module's size limit
    ("\udcff\udcfe,1\n", None),  # the bytes ff fe, not UTF-8: read as U+FFFD, no decoding error
], ids=["unclosed quote", "stray quote", "huge field", "not UTF-8"])
def test_a_csv_listing_the_csv_module_cannot_read_is_named_not_a_traceback(tmp_path, tail, line):
    path = tmp_path / "keypoints.csv"
    path.write_bytes(b"name,a\nok,2\n" + tail.encode("utf-8", errors="surrogateescape"))
    problems = Problems("skip")
    header, body = csv_rows(path, problems)
    rows = list(body)
    assert header == ["name", "a"] and rows[0] == (f"{path}:2", ["ok", "2"])
    if line is None:
        assert rows[1:] == [(f"{path}:3", ["\ufffd\ufffd", "1"])] and problems.skipped == []
    else:
        assert len(rows) == 1 and lines_of(problems.skipped) == [line]
        assert "unreadable CSV" in problems.skipped[0]
        with pytest.raises(BadInputError, match=re.escape(f"{path}:{line}: unreadable CSV")):
            list(csv_rows(path, Problems("raise"))[1])


# --- Human3.6M keypoints_2d and LSP / LSPET joints.mat ------------------------------------------------------

def f32_array(shape):
    return st.lists(VALUE, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))).map(
        lambda v: np.asarray(v, np.float32).reshape(shape))


BAD_MATRIX = st.one_of(
    st.just(np.full((32, 2), 1e39)), st.just(np.full((3, 14, 2), -1e300)),  # beyond float32
    st.just(np.zeros((32, 2), complex) + 1j), st.just(np.zeros((14, 3, 2), np.complex64)),
    st.just(np.array("not a matrix")), st.just(np.zeros((14, 3, 2), object)), st.just({"a": np.zeros(3)}),
)


def mat_bytes(path, value, key) -> bytes:
    scipy.io.savemat(path, {key: value})
    return path.read_bytes()


@SETTINGS
@given(st.data(), st.sampled_from(["(32, 2)", "(64,)", "(1, 64)", "shape", "bad values", "no key", "truncated"]))
def test_h36m_keypoints_2d_round_trip_exactly_or_name_the_file(tmp_path_factory, data, case):
    path = tmp_path_factory.mktemp("h36m") / "000001.mat"
    xy = data.draw(f32_array((32, 2)))
    value = {"(32, 2)": xy, "(64,)": xy.reshape(64), "(1, 64)": xy.reshape(1, 64)}.get(case, xy)
    key = "keypoints_2d"
    if case == "shape":
        value = np.zeros(data.draw(st.sampled_from([(2, 32), (32, 3), (31, 2), (33, 2), (64, 1), (32, 2, 2), (0, 2)])))
    elif case == "bad values":
        value = data.draw(BAD_MATRIX)
    elif case == "no key":
        key = "keypoints_3d"
    if data.draw(st.booleans()):  # MATLAB stores doubles: exact for every float32
        value = value.astype(np.float64) if isinstance(value, np.ndarray) and value.dtype == np.float32 else value
    full = mat_bytes(path, value, key)
    if case == "truncated":
        path.write_bytes(full[:data.draw(st.integers(0, len(full) - 1))])
    problems = Problems("skip")
    got = read_keypoints_2d(path, problems)
    if case in ("(32, 2)", "(64,)", "(1, 64)") or (case == "truncated" and got is not None):
        assert problems.skipped == []
        np.testing.assert_array_equal(got, xy)
        assert got.dtype == np.float32
    else:
        assert got is None and len(problems.skipped) == 1
        assert problems.skipped[0].startswith(f"{path}: ")
        with pytest.raises(BadInputError, match=re.escape(f"{path}: ")):
            read_keypoints_2d(path, Problems("raise"))


@SETTINGS
@given(st.data(), st.sampled_from(["lspet", "lsp", "shape", "bad values", "no key", "truncated"]))
def test_lsp_joints_round_trip_exactly_or_name_the_file(tmp_path_factory, data, case):
    path = tmp_path_factory.mktemp("lsp") / "joints.mat"
    n = data.draw(st.integers(0, 3))
    people = data.draw(f32_array((n, 14, 3)))  # x, y, visible
    if data.draw(st.booleans()):
        people[:, :, 2] = data.draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=n * 14, max_size=n * 14)
                                    .map(lambda v: np.reshape(np.asarray(v, np.float32), (n, 14))))
    key = "joints"
    if case == "lsp":  # 3 x 14 x N, third row = occluded flag
        value = people.transpose(2, 1, 0).copy()
        value[2] = 1.0 - value[2]
        want = value.transpose(2, 1, 0).copy()
        want[:, :, 2] = 1.0 - want[:, :, 2]
    else:  # LSPET: 14 x 3 x N
        value, want = people.transpose(1, 2, 0), people
    if case == "shape":
        value = np.zeros(data.draw(st.sampled_from([(14, 3), (3, 14), (14, 2, 4), (2, 14, 3), (13, 3, 2), (3, 15, 2),
                                                    (14, 3, 2, 2), (42, 2), (2, 14, 3, 2)])))
    elif case == "bad values":
        value = data.draw(BAD_MATRIX.filter(lambda v: not (isinstance(v, np.ndarray) and v.shape == (32, 2))))
    elif case == "no key":
        key = "joints_2d"
    if data.draw(st.booleans()) and isinstance(value, np.ndarray) and value.dtype == np.float32:
        value = value.astype(np.float64)
    full = mat_bytes(path, value, key)
    if case == "truncated":
        path.write_bytes(full[:data.draw(st.integers(0, len(full) - 1))])
    try:
        got, layout = read_joints(path)
    except BadInputError as e:
        assert case not in ("lspet", "lsp"), e
        assert str(e).startswith(f"{path}: ")
        if case == "shape":
            assert f"has shape {value.shape}" in str(e)
        return
    assert case in ("lspet", "lsp", "truncated"), (case, got.shape)
    assert layout == ("lsp" if case == "lsp" else "lspet")
    assert got.dtype == np.float32 and got.shape == (n, 14, 3)
    np.testing.assert_array_equal(got, want)  # every person, every joint, in order; NaN and 3.4e38 as written


# --- the store: write_store, then LandmarkStore / store_info ------------------------------------------------

@st.composite
def samples(draw):
    k = draw(st.integers(0, 4))
    names = draw(st.lists(st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12),
                          min_size=1, max_size=4, unique=True))
    out = []
    for name in names:
        h, w = draw(st.integers(6, 16)), draw(st.integers(6, 16))
        rng = np.random.default_rng(draw(st.integers(0, 2**16)))
        kp = np.concatenate([rng.uniform(0, 1, (k, 2)) * [w - 1, h - 1], rng.integers(0, 2, (k, 1))], 1)
        box = None
        if draw(st.booleans()):
            x0, y0 = rng.uniform(0, w - 2), rng.uniform(0, h - 2)
            box = np.array([x0, y0, rng.uniform(x0 + 1, w - 1), rng.uniform(y0 + 1, h - 1)], np.float32)
        out.append(Sample(name, rng.integers(0, 256, (h, w, 3), dtype=np.uint8), kp.astype(np.float32), box))
    return out


def expected_geometry(s: Sample, r: int, crop: str, margin: float):
    """Keypoints and box in the stored R x R image: the documented mapping (pixel centres at +0.5)."""
    h, w = s.image.shape[:2]
    if crop == "box" and s.box is not None:
        x0, y0, x1, y1 = (float(v) for v in s.box)
        side = max(x1 - x0, y1 - y0, 1.0) * (1 + 2 * margin)
        ox, oy, sx, sy = (x0 + x1) / 2 + 0.5 - side / 2, (y0 + y1) / 2 + 0.5 - side / 2, r / side, r / side
    else:
        ox, oy, sx, sy = 0.0, 0.0, r / w, r / h
    kp = s.keypoints.astype(np.float64).copy()
    kp[:, 0] = (kp[:, 0] + 0.5 - ox) * sx - 0.5
    kp[:, 1] = (kp[:, 1] + 0.5 - oy) * sy - 0.5
    box = np.array([0, 0, w - 1, h - 1], np.float64) if s.box is None else s.box.astype(np.float64)
    box = (box + 0.5 - [ox, oy, ox, oy]) * [sx, sy, sx, sy] - 0.5
    return kp, box


@settings(max_examples=30, deadline=None, suppress_health_check=QUIET)
@given(samples(), st.integers(4, 16), st.sampled_from(["full", "box"]), st.floats(0, 0.5), st.data())
def test_a_store_gives_back_what_was_written(tmp_path_factory, source, r, crop, margin, data):
    k = len(source[0].keypoints)
    info = SourceInfo(data.draw(st.text(min_size=1, max_size=8).filter(lambda t: "\x00" not in t)),
                      [f"kp{i}é" for i in range(k)], [(i, i + 1) for i in range(k - 1)],
                      data.draw(st.sampled_from(["image_size", "bbox", "interocular:0,1"])))
    names = [s.name for s in source]
    split = data.draw(st.permutations(names).flatmap(lambda p: st.integers(0, len(p)).map(lambda m: p[:m])))
    path = write_store(tmp_path_factory.mktemp("store") / "s.h5", iter(source), r, info=info, crop=crop,
                       margin=margin, splits={"fit": split})
    ds = LandmarkStore(path)
    assert len(ds) == len(source) and list(ds.arrays("names")) == names  # none dropped, none shifted
    assert store_info(path) == SourceInfo(info.dataset, info.keypoint_names, info.skeleton, info.normalisation)
    stored, boxes = ds.arrays("keypoints"), ds.arrays("boxes")
    for i, s in enumerate(source):
        kp, box = expected_geometry(s, r, crop, margin)
        np.testing.assert_allclose(stored[i][:, :2], kp[:, :2], atol=1e-4, rtol=1e-5, err_msg=s.name)
        np.testing.assert_array_equal(stored[i][:, 2], s.keypoints[:, 2])
        np.testing.assert_allclose(boxes[i], box, atol=1e-4, rtol=1e-5, err_msg=s.name)
        item = ds[i]
        assert item["image"].shape == (3, r, r) and item["row"] == i
        np.testing.assert_allclose(item["keypoints"].numpy(), kp[:, :2] / (r - 1) * 2 - 1, atol=1e-4, rtol=1e-5)
        assert item["visible"].tolist() == (s.keypoints[:, 2] > 0).tolist()
        if crop == "full" and s.image.shape[:2] == (r, r):  # nothing to resample: the very pixels
            np.testing.assert_array_equal(np.rint(item["image"].permute(1, 2, 0).numpy() * 255), s.image)
    fit = LandmarkStore(path, split="fit")
    assert list(fit.arrays("names")) == split and [fit[i]["row"] for i in range(len(fit))] == [
        names.index(n) for n in split]


@pytest.fixture(scope="module")
def written_store(tmp_path_factory):
    from lmkcore.data.procedural import ProceduralSource

    return write_store(tmp_path_factory.mktemp("store") / "s.h5", ProceduralSource(n=3, size=8), 8,
                       splits={"fit": ["figure_0_000001"]})


def _read_all(path) -> None:
    ds = LandmarkStore(path)
    for i in range(len(ds)):
        ds[i]
    for name in ("names", "keypoints", "boxes"):
        ds.arrays(name)
    store_info(path)


@settings(max_examples=60, deadline=None, suppress_health_check=QUIET)
@given(st.data(), st.sampled_from(["truncated", "signature", "garbage"]))
def test_a_truncated_or_garbled_store_is_a_store_error_naming_it(tmp_path_factory, written_store, data, damage):
    good = written_store.read_bytes()
    path = tmp_path_factory.mktemp("bad") / "s.h5"
    if damage == "truncated":
        raw = good[:data.draw(st.integers(0, len(good) - 1))]
    elif damage == "signature":  # the HDF5 signature is where a reader starts: any change there
        at = data.draw(st.integers(0, 7))
        raw = good[:at] + bytes([good[at] ^ data.draw(st.integers(1, 255))]) + good[at + 1:]
    else:
        raw = data.draw(st.binary(max_size=4096).filter(lambda b: not b.startswith(b"\x89HDF")))
    path.write_bytes(raw)
    for read in (_read_all, open_store, store_info):
        with pytest.raises(StoreError, match="^" + re.escape(f"{path}: ")):
            read(path)


ATTR_VALUES = st.one_of(st.integers(-5, 64), st.floats(allow_nan=True), st.text(max_size=10).filter(
    lambda t: "\x00" not in t), st.sampled_from(["[]", '["a", "b"]', "[[0, 1]]", "{}", "3", "null", "8.0"]),
    st.lists(st.integers(0, 10), min_size=1, max_size=3).map(np.array))


def _array(dtype, shape):
    return np.zeros(shape, dtype) if dtype != "str" else np.full(shape, b"a", dtype="S1")


DTYPES = st.sampled_from([np.uint8, np.float32, np.float64, np.int64, "str"])


def datasets(shape=None):
    """Arrays of any dtype h5py writes, of the given shape (the store's own) or any other."""
    shapes = st.lists(st.integers(0, 8), min_size=0, max_size=4).map(tuple)
    return st.builds(_array, DTYPES, shapes if shape is None else st.one_of(st.just(shape), shapes))


@settings(max_examples=60, deadline=None, suppress_health_check=QUIET)
@given(st.data(), st.sampled_from(["attribute", "dataset", "split", "splits"]))
def test_a_store_with_a_wrong_attribute_or_dataset_is_read_or_a_store_error(tmp_path_factory, written_store, data,
                                                                            damage):
    """What h5py can write (any attribute value, any dataset in place of one of the store's): the store reads
    with items of the stated shapes, or opening it is a `StoreError` naming it, never a library exception."""
    good = written_store.read_bytes()
    path = tmp_path_factory.mktemp("odd") / "s.h5"
    path.write_bytes(good)
    with h5py.File(path, "r+") as f:
        if damage == "attribute":
            f.attrs[data.draw(st.sampled_from(ATTRS))] = data.draw(ATTR_VALUES)
        elif damage == "dataset":
            name = data.draw(st.sampled_from(["images", "keypoints", "boxes", "names"]))
            shape = f[name].shape
            del f[name]
            f.create_dataset(name, data=data.draw(datasets(shape)))
        elif damage == "split":
            del f["splits/fit"]
            f.create_dataset("splits/fit", data=data.draw(st.one_of(datasets((1,)), st.lists(st.integers(-5, 5)).map(
                lambda v: np.asarray(v, np.int64)), st.just(np.array([0.5, 1.5])))))
        else:
            del f["splits"]
            f.create_dataset("splits", data=np.arange(3))
    try:
        ds = LandmarkStore(path)
        _read_all(path)
        fit = LandmarkStore(path, split="fit") if damage != "splits" else ds
        for i in range(len(fit)):
            fit[i]
    except StoreError as e:
        assert str(e).startswith(f"{path}: ")
        return
    except KeyError as e:  # the one error of the reader that is no StoreError: a split it does not have
        assert damage == "splits" and "no split 'fit'" in str(e)
        return
    r, k = int(ds.resolution), len(ds.info.keypoint_names)
    for item in (ds[i] for i in range(len(ds))):
        assert item["image"].shape == (3, r, r) and item["keypoints"].shape == (k, 2) and item["box"].shape == (4,)
