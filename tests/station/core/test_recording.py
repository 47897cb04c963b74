"""The recording file (station.core.recording, DESIGN.md section 4)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from station.core.errors import UserError
from station.core.geometry import PlateGeometry
from station.core.recording import (
    Recording,
    RecordingError,
    RecordingWriter,
    parse_recording,
    read_recording,
    recording_to_text,
    write_recording,
)
from tests.paths import BDS_DIR

SEED = 20261121

# The example of DESIGN.md section 4, verbatim.
EXAMPLE = """\
# balance-station recording v1
# sample_rate_hz: 80
# plate_ml_mm: 400
# plate_ap_mm: 300
# feet_ml_mm: 200
t_s,fl_n,fr_n,bl_n,br_n
0.0000,171.2,168.9,170.4,172.0
0.0125,171.0,169.3,170.1,172.3
"""

HEAD = "# sample_rate_hz: 80\n# plate_ml_mm: 400\n# plate_ap_mm: 300\n"
COLS = "t_s,fl_n,fr_n,bl_n,br_n\n"


def test_contract_example():
    rec = parse_recording(EXAMPLE, name="example.csv")
    assert rec.name == "example.csv"
    assert rec.sample_rate_hz == 80.0
    assert rec.geometry == PlateGeometry(ml_mm=400.0, ap_mm=300.0, feet_ml_mm=200.0)
    assert rec.metadata == {"sample_rate_hz": "80", "plate_ml_mm": "400", "plate_ap_mm": "300", "feet_ml_mm": "200"}
    assert_array_equal(rec.t_s, [0.0, 0.0125])
    assert_array_equal(rec.forces_n, [[171.2, 168.9, 170.4, 172.0], [171.0, 169.3, 170.1, 172.3]])
    assert rec.extra == {}
    assert rec.n_samples == 2 and rec.span_s == 0.0125
    assert_allclose(rec.fz_n, [682.5, 682.7])


def test_lenient_where_the_contract_allows():
    text = (
        "\ufeff# balance-station recording v1\r\n"
        "# sample_rate_hz: 1000\r\n"
        "# plate_ml_mm: 420.5\r\n"
        "#plate_ap_mm:310\r\n"
        "# started_at: 2026-11-21T09:00:00+01:00\r\n"
        "# some_future_key: anything: at all\r\n"
        "# some_future_key: a repeat, ignored\r\n"
        "# a free comment without a key\r\n"
        "\r\n"
        "t_s, fl_n ,fr_n,bl_n,br_n,fl_counts,flags\r\n"
        "0.000,1,2,3,4,72150,0\r\n"
        "0.001,1.5,2.5,3.5,4.5,72151,GLITCH\r\n"
        "0.002, 2 ,3,4,5,72152,\r\n"
        "\r\n\r\n   \r\n"
    )
    rec = parse_recording(text, name="lenient.csv")
    assert rec.sample_rate_hz == 1000.0
    assert rec.geometry == PlateGeometry(ml_mm=420.5, ap_mm=310.0, feet_ml_mm=200.0)  # feet: the default
    assert rec.metadata["started_at"] == "2026-11-21T09:00:00+01:00"
    assert rec.metadata["some_future_key"] == "anything: at all"
    assert "a free comment without a key" not in str(rec.metadata)
    assert_array_equal(rec.forces_n[:, 0], [1.0, 1.5, 2.0])
    assert list(rec.extra) == ["fl_counts", "flags"]
    assert rec.extra["fl_counts"].dtype == np.float64
    assert_array_equal(rec.extra["fl_counts"], [72150.0, 72151.0, 72152.0])
    assert rec.extra["flags"].tolist() == ["0", "GLITCH", ""]  # not all numbers: kept as text


def test_lines_given_as_a_list_and_columns_in_any_order():
    lines = [*HEAD.splitlines(keepends=True), "br_n,bl_n,t_s,fr_n,fl_n\n", "4,3,0.0,2,1\n", "8,7,0.1,6,5\n"]
    rec = parse_recording(lines, name="reordered.csv")
    assert_array_equal(rec.forces_n, [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])
    assert_array_equal(rec.t_s, [0.0, 0.1])


@pytest.mark.parametrize("rate", ["10", "10.0", "80", "99.5", "1000"])
def test_any_rate_from_10_to_1000_hz(rate):
    rec = parse_recording(f"# sample_rate_hz: {rate}\n# plate_ml_mm: 400\n# plate_ap_mm: 300\n"
                          f"{COLS}0,1,1,1,1\n1,1,1,1,1\n")
    assert rec.sample_rate_hz == float(rate)


# (text, line named in the message, words in the message)
BAD_TEXTS = [
    ("", None, "empty file"),
    ("\n\n  \n", None, "empty file"),
    ("# sample_rate_hz: 80\n# plate_ml_mm: 400\n", 2, "no header row"),
    ("# plate_ml_mm: 400\n# plate_ap_mm: 300\n" + COLS + "0,1,1,1,1\n", 3,
     "missing required metadata key 'sample_rate_hz'"),
    ("# sample_rate_hz: 80\n# plate_ap_mm: 300\n" + COLS + "0,1,1,1,1\n", 3, "'plate_ml_mm'"),
    ("# sample_rate_hz: eighty\n# plate_ml_mm: 400\n# plate_ap_mm: 300\n" + COLS, 1,
     "bad metadata value for sample_rate_hz: 'eighty' is not a number"),
    ("# sample_rate_hz: 9.99\n# plate_ml_mm: 400\n# plate_ap_mm: 300\n" + COLS, 1, "outside 10..1000 Hz"),
    ("# sample_rate_hz: 1001\n# plate_ml_mm: 400\n# plate_ap_mm: 300\n" + COLS, 1, "outside 10..1000 Hz"),
    ("# sample_rate_hz: nan\n# plate_ml_mm: 400\n# plate_ap_mm: 300\n" + COLS, 1, "sample_rate_hz"),
    ("# sample_rate_hz: 80\n# plate_ml_mm: -400\n# plate_ap_mm: 300\n" + COLS, 2, "plate_ml_mm"),
    (HEAD + "# feet_ml_mm: 450\n" + COLS, 4, "feet_ml_mm: 450 is more than the cell spacing"),
    ("# sample_rate_hz: 80\n# plate_ml_mm: 150\n# plate_ap_mm: 300\n" + COLS, 4, "(the default)"),
    (HEAD + "# sample_rate_hz: 100\n" + COLS, 4, "given twice (first on line 1)"),
    (HEAD + "t_s,fl_n,fr_n,bl_n\n0,1,1,1\n", 4, "missing required column br_n"),
    (HEAD + "time,fl,fr,bl,br\n0,1,1,1,1\n", 4, "missing required columns t_s, fl_n, fr_n, bl_n, br_n"),
    (HEAD + "t_s,fl_n,fr_n,bl_n,br_n,fl_n\n", 4, "column 'fl_n' appears twice"),
    (HEAD + COLS, 4, "too few samples: no samples"),
    (HEAD + COLS + "0,1,1,1,1\n\n", 5, "too few samples: only 1 sample"),
    (HEAD + COLS + "0,1,1,1,1\n0.0125,1,1,1\n", 6, "expected 5 fields as in the header (line 4), found 4"),
    (HEAD + COLS + "0,1,1,1,1\n0.0125,1,1,1,1,1\n", 6, "found 6"),
    (HEAD + COLS + "0,1,1,1,1\n0.0125,1,abc,1,1\n", 6, "column fr_n: 'abc' is not a number"),
    (HEAD + COLS + "0,1,1,1,1\n0.0125,1,1,1,\n", 6, "column br_n: '' is not a number"),
    (HEAD + COLS + "0,1,1,1,1\n0.0125,nan,1,1,1\n", 6, "column fl_n: 'nan' is not a finite number"),
    (HEAD + COLS + "0,1,1,1,1\n0.0125,1,1,inf,1\n", 6, "column bl_n: 'inf' is not a finite number"),
    (HEAD + COLS + "zero,1,1,1,1\n0.0125,1,1,1,1\n", 5, "column t_s: 'zero' is not a number"),
    (HEAD + COLS + "0,1,1,1,1\n0.0125,1,1,1,1\n0.0125,1,1,1,1\n", 7,
     "t_s 0.0125 is not after the previous sample's 0.0125 (line 6)"),
    (HEAD + COLS + "0,1,1,1,1\n0.0250,1,1,1,1\n0.0125,1,1,1,1\n", 7, "time must increase"),
    (HEAD + COLS + "0,1,1,1,1\n\n\n0.0125,1,1,1,x\n", 8, "column br_n"),  # blank lines do not shift the count
    (HEAD + COLS + "0,1,1,1,1\n0.0125,1,1,1,x\n0.025,y,1,1,1\n", 6, "column br_n: 'x'"),  # first line first
]


@pytest.mark.parametrize("text,line,words", BAD_TEXTS)
def test_problems_name_the_file_the_line_and_the_problem(text, line, words):
    with pytest.raises(RecordingError) as info:
        parse_recording(text, name="trial.csv")
    message = str(info.value)
    assert "\n" not in message
    prefix = f"trial.csv:{line}: " if line is not None else "trial.csv: "
    assert message.startswith(prefix), message
    assert words in message, message


def test_crlf_keeps_line_numbers():
    text = (HEAD + COLS + "0,1,1,1,1\n0.0125,1,?,1,1\n").replace("\n", "\r\n")
    with pytest.raises(RecordingError, match=r"^x\.csv:6: column fr_n: '\?' is not a number$"):
        parse_recording(text, name="x.csv")


def test_long_bad_values_are_shortened_on_one_line():
    text = HEAD + COLS + "0,1,1,1,1\n0.0125,1," + "y" * 500 + ",1,1\n"
    with pytest.raises(RecordingError) as info:
        parse_recording(text, name="x.csv")
    assert len(str(info.value)) < 120


def test_recording_error_is_a_user_error():
    assert issubclass(RecordingError, UserError)


# -- files -----------------------------------------------------------------------------------


def test_read_file_with_bom_and_crlf(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + EXAMPLE.replace("\n", "\r\n").encode("utf-8"))
    rec = read_recording(path)
    assert rec.name == str(path)
    assert_array_equal(rec.t_s, [0.0, 0.0125])


def test_missing_file(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(RecordingError, match=r"nope\.csv: no such file$"):
        read_recording(path)


def test_directory(tmp_path):
    with pytest.raises(RecordingError, match="is a directory"):
        read_recording(tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_bytes(b"")
    with pytest.raises(RecordingError, match=r"empty\.csv: empty file$"):
        read_recording(path)


def test_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes((HEAD + "# patient: Jos").encode() + b"\xe9" + b"\n" + COLS.encode())
    with pytest.raises(RecordingError) as info:
        read_recording(path)
    assert str(info.value) == f"{path}:4: not UTF-8 text (byte 0xe9 at column 15)"


# -- writing and the round trip -------------------------------------------------------------------


def sample_recording(n: int = 400, *, seed: int = SEED) -> Recording:
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.uniform(0.011, 0.014, size=n)) - 0.011
    forces = 170.0 + rng.normal(0, 3.0, size=(n, 4))
    return Recording(
        t_s=t,
        forces_n=forces,
        sample_rate_hz=80.0,
        geometry=PlateGeometry(ml_mm=410.0, ap_mm=305.5, feet_ml_mm=180.0),
        metadata={"protocol": "quiet-stance", "patient": "P-0042", "started_at": "2026-11-21T09:00:00+00:00"},
        extra={
            "fl_counts": rng.integers(-8388608, 8388607, size=n).astype(np.float64),
            "flags": rng.integers(0, 16, size=n).astype(np.float64),
        },
        name="sample",
    )


def test_round_trip_within_the_printed_precision(tmp_path):
    rec = sample_recording()
    path = tmp_path / "sub" / "round.csv"
    write_recording(path, rec)
    back = read_recording(path)
    assert_allclose(back.t_s, rec.t_s, rtol=0, atol=0.5e-6)  # 6 decimals
    assert_allclose(back.forces_n, rec.forces_n, rtol=0, atol=0.5e-4)  # 4 decimals
    assert back.sample_rate_hz == rec.sample_rate_hz
    assert back.geometry == rec.geometry
    for key, value in rec.metadata.items():
        assert back.metadata[key] == value
    assert list(back.extra) == ["fl_counts", "flags"]
    assert_array_equal(back.extra["fl_counts"], rec.extra["fl_counts"])  # exact: written in full
    assert_array_equal(back.extra["flags"], rec.extra["flags"])
    # and writing what was read gives the same text again
    assert recording_to_text(back) == path.read_text(encoding="utf-8")


def test_round_trip_of_a_real_trial(tmp_path):
    rec = read_recording(BDS_DIR / "BDS00001.csv")
    assert rec.n_samples == 6000 and rec.sample_rate_hz == 100.0
    assert rec.metadata["source"].startswith("Santos & Duarte (2016)")
    write_recording(tmp_path / "copy.csv", rec)
    back = read_recording(tmp_path / "copy.csv")
    assert_array_equal(back.forces_n, rec.forces_n)  # 4 decimals in, 4 decimals out
    assert_allclose(back.t_s, rec.t_s, atol=1e-12)


def test_writer_streams_and_flushes(tmp_path):
    path = tmp_path / "live.csv"
    with RecordingWriter(
        path, sample_rate_hz=80, geometry=PlateGeometry(), metadata={"protocol": "single-leg"},
        extra_columns=("flags",),
    ) as writer:
        assert path.read_text(encoding="utf-8").splitlines()[-1] == "t_s,fl_n,fr_n,bl_n,br_n,flags"
        for i in range(5):
            writer.write_frame(i / 80, [100.0 + i, 101.0, 102.0, 103.123456], flags=i)
        writer.flush()
        partial = read_recording(path)  # readable while still open
        assert partial.n_samples == 5
        assert writer.rows_written == 5
        writer.write_frame(5 / 80, [1.0, 2.0, 3.0, 4.0])  # flags missing: written empty
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "# balance-station recording v1"
    assert "# protocol: single-leg" in lines
    assert lines[-2] == "0.050000,104.0000,101.0000,102.0000,103.1235,4"
    assert lines[-1] == "0.062500,1.0000,2.0000,3.0000,4.0000,"
    assert "\r" not in path.read_bytes().decode("utf-8")
    with pytest.raises(ValueError, match="closed"):
        writer.write_frame(1.0, [1.0, 1.0, 1.0, 1.0])
    writer.close()  # idempotent


def test_writer_leaves_a_given_stream_open():
    buf = io.StringIO()
    with RecordingWriter(buf, sample_rate_hz=100, geometry=PlateGeometry()) as writer:
        writer.write_frame(0.0, [1, 2, 3, 4])
        writer.write_frame(0.01, [1, 2, 3, 4])
    assert not buf.closed
    rec = parse_recording(buf.getvalue(), name="buf")
    assert rec.n_samples == 2 and rec.metadata["sample_rate_hz"] == "100"


@pytest.mark.parametrize(
    "call,word",
    [
        (lambda w: w.write_frame(0.0, [1, 2, 3]), "forces_n"),
        (lambda w: w.write_frame(0.0, [1, 2, 3, float("nan")]), "forces_n"),
        (lambda w: w.write_frame(float("inf"), [1, 2, 3, 4]), "t_s"),
        (lambda w: (w.write_frame(1.0, [1, 2, 3, 4]), w.write_frame(1.0, [1, 2, 3, 4])), "t_s must increase"),
        (lambda w: w.write_frame(0.0, [1, 2, 3, 4], nope=1), "unknown extra column"),
        (lambda w: w.write_frame(0.0, [1, 2, 3, 4], note="a,b"), "comma"),
    ],
)
def test_writer_refuses_bad_frames(call, word):
    writer = RecordingWriter(io.StringIO(), sample_rate_hz=80, geometry=PlateGeometry(), extra_columns=("note",))
    with pytest.raises(ValueError, match=word):
        call(writer)


@pytest.mark.parametrize(
    "kwargs,word",
    [
        ({"sample_rate_hz": 5}, "sample_rate_hz"),
        ({"sample_rate_hz": 80, "extra_columns": ("fl_n",)}, "extra_columns"),
        ({"sample_rate_hz": 80, "extra_columns": ("a", "a")}, "repeated"),
        ({"sample_rate_hz": 80, "metadata": {"bad key": 1}}, "metadata key"),
        ({"sample_rate_hz": 80, "metadata": {"note": "two\nlines"}}, "one line"),
    ],
)
def test_writer_refuses_bad_setup(kwargs, word):
    with pytest.raises(ValueError, match=word):
        RecordingWriter(io.StringIO(), geometry=PlateGeometry(), **kwargs)


def test_recording_checks_its_arrays():
    with pytest.raises(ValueError, match="forces_n must have shape"):
        Recording(t_s=[0.0, 0.1], forces_n=np.zeros((2, 3)), sample_rate_hz=80.0)
    with pytest.raises(ValueError, match="strictly increasing"):
        Recording(t_s=[0.0, 0.0], forces_n=np.zeros((2, 4)), sample_rate_hz=80.0)
    with pytest.raises(ValueError, match="sample_rate_hz"):
        Recording(t_s=[0.0, 0.1], forces_n=np.zeros((2, 4)), sample_rate_hz=2000.0)
