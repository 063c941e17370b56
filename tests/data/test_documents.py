import pytest

from bertkit.data.documents import expand_inputs, read_documents, split_sentences
from bertkit.errors import BertkitError, InputFileError


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Mr. Smith went to Washington. He said hello.", ["Mr. Smith went to Washington.", "He said hello."]),
        (
            '"Where are you?" asked J. K. Rowling. Nobody answered.',
            ['"Where are you?" asked J. K. Rowling.', "Nobody answered."],
        ),
        (
            '"Oh!" said he. "Really?" She laughed... It was late.',
            ['"Oh!" said he.', '"Really?"', "She laughed...", "It was late."],
        ),
        ("It was 5 p.m. when we left. Then we ate.", ["It was 5 p.m. when we left.", "Then we ate."]),
        (
            "Dr. Watson, i.e. the doctor, came at 3 o'clock. St. Paul's bells rang.",
            ["Dr. Watson, i.e. the doctor, came at 3 o'clock.", "St. Paul's bells rang."],
        ),
        ("He shouted “Stop!” Then he ran.", ["He shouted “Stop!”", "Then he ran."]),
        ("Pete is a U. P., and may be left. Yes.", ["Pete is a U. P., and may be left.", "Yes."]),
        ("Chapter 1. It began. 1854 was a hard year.", ["Chapter 1.", "It began.", "1854 was a hard year."]),
        ("  wrapped\n  across   lines.  Next one! ", ["wrapped across lines.", "Next one!"]),
        ("------", []),
        ("", []),
    ],
)
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


def test_file_documents_join_wrapped_lines_and_keep_paragraph_ends(tmp_path):
    path = tmp_path / "book.txt"
    path.write_text("CHAPTER I\n\nThe sun rose over\nthe hills. Birds sang\n\n\nThen the rain came\n")
    (doc,) = read_documents(path, "file")
    assert doc == ["CHAPTER I", "The sun rose over the hills.", "Birds sang", "Then the rain came"]


def test_blank_line_documents(tmp_path):
    path = tmp_path / "docs.txt"
    path.write_text("First doc line one.\nLine two. Still doc one\n\n\nSecond doc.\n\nThird doc, one sentence\n")
    docs = list(read_documents(path, "blank_line"))
    assert docs == [["First doc line one.", "Line two.", "Still doc one"], ["Second doc."], ["Third doc, one sentence"]]


def test_bad_input_names_the_file_and_line(tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"fine line\ncaf\xe9 au lait\n")
    with pytest.raises(InputFileError, match=r"latin1.txt:2: not UTF-8"):
        list(read_documents(bad))
    with pytest.raises(BertkitError, match="no such file"):
        expand_inputs([tmp_path / "missing.txt"])
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(BertkitError, match="no \\*.txt files"):
        expand_inputs([tmp_path / "empty_dir"])
    with pytest.raises(BertkitError, match="doc_boundary"):
        list(read_documents(bad, "page"))


def test_expand_inputs_sorts_recurses_and_dedupes(tmp_path):
    (tmp_path / "b").mkdir()
    for name in ("b/2.txt", "a.txt", "b/1.txt", "b/skip.md"):
        (tmp_path / name).write_text("x")
    files = expand_inputs([tmp_path, tmp_path / "a.txt"])
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["a.txt", "b/1.txt", "b/2.txt"]


def _best_time(text, repeats=7):
    """The least CPU time of this thread (not wall time: the machine is shared; not process time:
    torch's idle worker threads spin in the same process) of a few runs, without GC pauses."""
    import gc
    import time

    best = float("inf")
    gc.disable()
    try:
        for _ in range(repeats):
            start = time.thread_time()
            split_sentences(text)
            best = min(best, time.thread_time() - start)
    finally:
        gc.enable()
    return best


@pytest.mark.parametrize(
    "unit",
    ["a", ".", "a.", "x! ", '""".', "Mr. "],
    ids=["long-token", "dot-run", "dotted-token", "many-ends", "quotes", "abbreviations"],
)
def test_the_splitter_is_linear(unit):
    """time at 4n <= 6x time at n from 10k to 160k characters (it was quadratic on a long token)."""
    times = [_best_time(unit * (n // len(unit)) + " The end.") for n in (10_000, 40_000, 160_000)]
    for small, large in zip(times, times[1:]):
        assert large <= 6 * small + 2e-3, times  # + 2 ms: timer noise on a busy machine
