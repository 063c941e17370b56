"""Readers: the shared files parse with the documented counts; bad rows fail naming file:line."""

import json

import pytest

from bertkit.errors import InputFileError
from bertkit.tasks import readers


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_shared_files_parse_with_readme_counts(shared_data):
    sst = readers.read_task_data("classify", shared_data("sst2", "validation.tsv"))
    assert len(sst) == 1821 and sst[0].line == 2
    assert readers.label_list(ex.label for ex in sst) == ["0", "1"]
    snli = readers.read_task_data("nli", shared_data("nli", "snli_validation.tsv"))
    assert len(snli) == 981 and all(ex.text_pair for ex in snli)
    assert readers.label_list(ex.label for ex in snli) == ["contradiction", "entailment", "neutral"]
    squad = readers.read_task_data("qa", shared_data("squad", "validation-v1.1-from-dev.json"))
    assert len(squad) == 559
    assert all(ex.context[s : s + len(t)] == t for ex in squad for t, s in ex.answers)
    conll = readers.read_task_data("ner", shared_data("conll2003", "valid.txt"))
    assert len(conll) == 3187 and sum(len(ex.words) for ex in conll) == 51135


def test_tsv_keeps_quotes_and_csv_jsonl_columns(tmp_path):
    tsv = write(tmp_path, "a.tsv", 'sentence\tlabel\n"quoted" start\t1\nplain\t0\n')
    ex = readers.read_table(tsv)
    assert [e.text for e in ex] == ['"quoted" start', "plain"] and [e.label for e in ex] == ["1", "0"]
    csv_file = write(tmp_path, "b.csv", 'lab,txt\npos,"a, b"\nneg,c\n')
    ex = readers.read_table(csv_file, text_column="txt", label_column="lab")
    assert [(e.text, e.label) for e in ex] == [("a, b", "pos"), ("c", "neg")]
    jl = write(tmp_path, "c.jsonl", json.dumps({"p": "x", "h": "y", "y": 2}) + "\n")
    ex = readers.read_table(jl, "p", "h", "y")
    assert (ex[0].text, ex[0].text_pair, ex[0].label, ex[0].line) == ("x", "y", "2", 1)
    headless = write(tmp_path, "d.tsv", "one\tA\ntwo\tB\n")
    ex = readers.read_table(headless, 0, None, 1, header=False)
    assert [(e.text, e.label) for e in ex] == [("one", "A"), ("two", "B")]


def test_label_may_be_absent_for_prediction(tmp_path):
    path = write(tmp_path, "p.tsv", "sentence\nhello\n")
    assert readers.read_table(path, require_label=False)[0].label is None
    with pytest.raises(InputFileError, match="no column 'label'"):
        readers.read_table(path)


def test_tsv_with_missing_column_names_file_and_line(tmp_path):
    path = write(tmp_path, "bad.tsv", "premise\thypothesis\tlabel\na\tb\tneutral\nonly premise\n")
    with pytest.raises(InputFileError) as err:
        readers.read_task_data("nli", path)
    assert f"{path}:3:" in str(err.value) and "columns" in str(err.value)
    path = write(tmp_path, "bad2.tsv", "text\tlabel\nx\t1\n")
    with pytest.raises(InputFileError, match=r"bad2.tsv:1: the header has no column 'sentence'.*--text-column"):
        readers.read_task_data("classify", path)


def test_unknown_label_at_evaluation(tmp_path):
    path = write(tmp_path, "dev.tsv", "sentence\tlabel\ngood\t1\nodd\t7\n")
    examples = readers.read_table(path)
    with pytest.raises(InputFileError, match=r"dev.tsv:3: label '7' is not one the model was trained with \(0, 1\)"):
        readers.check_labels(examples, {"0": 0, "1": 1}, path)


def squad_doc(context, qas):
    return {"version": "1.1", "data": [{"title": "T", "paragraphs": [{"context": context, "qas": qas}]}]}


def test_squad_answer_start_mismatch(tmp_path):
    doc = squad_doc(
        "Paris is in France.",
        [
            {"id": "q1", "question": "Where?", "answers": [{"text": "France", "answer_start": 12}]},
            {"id": "q2", "question": "What?", "answers": [{"text": "Paris", "answer_start": 3}]},
        ],
    )
    path = write(tmp_path, "s.json", json.dumps(doc, indent=1))
    with pytest.raises(InputFileError) as err:
        readers.read_squad(path)
    msg = str(err.value)
    line = next(i for i, text in enumerate(json.dumps(doc, indent=1).splitlines(), 1) if '"q2"' in text)
    assert msg.startswith(f"{path}:{line}: data[0].paragraphs[0].qas[1] (id q2): answer_start 3")
    assert "the context there reads 'is is', not 'Paris'" in msg and "fix answer_start" in msg


def test_squad_context_without_question(tmp_path):
    path = write(tmp_path, "s.json", json.dumps(squad_doc("Lonely context.", [])))
    with pytest.raises(InputFileError, match=r"s.json:1: data\[0\].paragraphs\[0\]: a context with no question"):
        readers.read_squad(path)
    path = write(tmp_path, "t.json", '{"data": [')
    with pytest.raises(InputFileError, match=r"t.json:1: not valid JSON"):
        readers.read_squad(path)


def test_conll_wrong_column_count(tmp_path):
    path = write(tmp_path, "c.txt", "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ O\n")
    with pytest.raises(InputFileError, match=r"c.txt:4: expected 4 space-separated columns .* found 3"):
        readers.read_conll(path)
    path = write(tmp_path, "d.txt", "EU NNP B-NP B-ORG\nrejects VBZ B-VP X-Y\n")
    with pytest.raises(InputFileError, match=r"d.txt:2: tag 'X-Y' is not IOB"):
        readers.read_conll(path)


def test_conll_sentences_and_iob_label_order(tmp_path):
    path = write(
        tmp_path,
        "c.txt",
        "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nsays VBZ B-VP O\n\n"
        "Peter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n",
    )
    sents = readers.read_conll(path)
    assert [(s.words, s.tags, s.line) for s in sents] == [
        (["EU", "says"], ["B-ORG", "O"], 3),
        (["Peter", "Blackburn"], ["B-PER", "I-PER"], 6),
    ]
    tags = [t for s in sents for t in s.tags]
    assert readers.label_list(tags) == ["O", "B-ORG", "B-PER", "I-PER"]
