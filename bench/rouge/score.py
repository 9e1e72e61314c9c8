#!/usr/bin/env python3
"""Dataset conversion and ROUGE scoring for bench/rouge (see README.md).

    score.py convert WHEEL OUT.jsonl
        Reads the ACLSum data out of the aclsum wheel and writes one
        {"id", "text", "reference"} object per paper.
    score.py score DOCS.jsonl SUMMARIES.jsonl [TIMING.txt]
        Scores every summarizer found in SUMMARIES.jsonl against the
        references in DOCS.jsonl and prints the table.

`convert` needs only the standard library; `score` needs `rouge-score`.
"""

import json
import random
import re
import sys
import zipfile
from collections import defaultdict

DATA = "aclsum/dataset/"
SPLITS = ("train", "val", "test")
ASPECTS = ("challenge", "approach", "outcome")


def words(text):
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def clean(text):
    return " ".join(text.split())


def heading(par):
    num = (par.get("sec_num") or "").strip()
    name = clean(par.get("section") or "")
    return f"{num} {name}".strip()


def conclusion_section(body, sentences):
    """The section(s) of `body` the dataset's conclusion sentences come
    from: those whose title says "conclusion", or else the one whose words
    overlap the dataset's (tokenized) conclusion sentences most."""
    names = list(dict.fromkeys(p["section"] or "" for p in body))
    named = [n for n in names if re.search(r"conclu", n, re.I)]
    if named:
        return set(named)
    target = words(" ".join(sentences))
    if not target:
        return set()

    def jaccard(name):
        w = words(" ".join(p["text"] for p in body if (p["section"] or "") == name))
        return len(w & target) / len(w | target) if w else 0.0

    return {max(names, key=jaccard)}


def convert(wheel, out_path):
    """Text: the paper's title, abstract, introduction and conclusion (the
    parts the reference summaries were written from) as paragraphs, one a
    line, with the section headings as lines of their own, the way a page's
    main text reaches the summarizer. Reference: the three one-sentence
    aspect summaries (challenge, approach, outcome), in that order."""
    docs = []
    with zipfile.ZipFile(wheel) as z:
        for split in SPLITS:
            for line in z.read(f"{DATA}{split}.jsonl").decode().splitlines():
                if not line.strip():
                    continue
                row = json.loads(line)
                paper = json.loads(z.read(f"{DATA}paper_jsons/{row['id']}.json"))
                parse = paper["pdf_parse"]
                body = parse["body_text"]
                concl = conclusion_section(body, row["sentences"]["conclusion"])
                lines = [clean(row["title"]), "Abstract"]
                lines += [clean(p["text"]) for p in parse["abstract"]]
                last = None
                for p in body:
                    sec = p["section"] or ""
                    if not (re.search(r"intro", sec, re.I) or sec in concl):
                        continue
                    if sec != last:
                        lines.append(heading(p))
                        last = sec
                    lines.append(clean(p["text"]))
                reference = "\n".join(clean(row["summary"][a]) for a in ASPECTS)
                text = "\n".join(l for l in lines if l)
                docs.append({"id": row["id"], "text": text, "reference": reference})
    docs.sort(key=lambda d: d["id"])
    with open(out_path, "w", encoding="utf-8") as f:
        for d in docs:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    n = len(docs)
    chars = sum(len(d["text"]) for d in docs) / n
    ref = sum(len(d["reference"]) for d in docs) / n
    print(f"{n} documents, mean {chars:.0f} chars of text, {ref:.0f} chars of reference")


def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(l) for l in f if l.strip()]


def read_timing(path):
    """`NAME  N us/doc ...` lines, as the summaries example prints them."""
    timing = {}
    if path:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = re.match(r"^(\S+)\s+([0-9.]+) us/doc\b", line.strip())
                if m:
                    timing[m.group(1)] = float(m.group(2))
    return timing


def paired_ci(a, b, rounds=2000, seed=0):
    """95% bootstrap interval of mean(a - b) over documents."""
    diffs = [x - y for x, y in zip(a, b)]
    rng = random.Random(seed)
    n = len(diffs)
    means = sorted(sum(rng.choice(diffs) for _ in range(n)) / n for _ in range(rounds))
    return sum(diffs) / n, means[int(0.025 * rounds)], means[int(0.975 * rounds) - 1]


def score(docs_path, summaries_path, timing_path=None):
    from rouge_score import rouge_scorer

    refs = {d["id"]: d["reference"] for d in read_jsonl(docs_path)}
    by_name = defaultdict(dict)
    for s in read_jsonl(summaries_path):
        by_name[s["summarizer"]][s["id"]] = s["summary"]
    timing = read_timing(timing_path)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)
    ids = sorted(refs)
    per_doc = {}
    rows = []
    for name, summaries in by_name.items():
        missing = [i for i in ids if i not in summaries]
        if missing:
            sys.exit(f"{name}: no summary for {len(missing)} documents, e.g. {missing[0]}")
        scores = [scorer.score(refs[i], summaries[i]) for i in ids]
        cols = {
            k: [100 * s[k].fmeasure for s in scores] for k in ("rouge1", "rouge2", "rougeL")
        }
        per_doc[name] = cols
        mean = {k: sum(v) / len(v) for k, v in cols.items()}
        chars = sum(len(summaries[i]) for i in ids) / len(ids)
        us = timing.get(name)
        rows.append((name, mean, chars, us))

    print(f"ACLSum, {len(ids)} documents; ROUGE F1 x 100 (mean over documents, stemmed)")
    print()
    print(f"{'summarizer':<12} {'ROUGE-1':>8} {'ROUGE-2':>8} {'ROUGE-L':>8} {'chars':>7} {'us/doc':>9}")
    for name, m, chars, us in rows:
        t = f"{us:9.1f}" if us is not None else f"{'-':>9}"
        print(
            f"{name:<12} {m['rouge1']:8.2f} {m['rouge2']:8.2f} {m['rougeL']:8.2f} {chars:7.0f} {t}"
        )
    if "extractive" in per_doc and "lexrank" in per_doc:
        print()
        print("extractive - lexrank, paired bootstrap 95% interval:")
        for k, label in (("rouge1", "ROUGE-1"), ("rouge2", "ROUGE-2"), ("rougeL", "ROUGE-L")):
            d, lo, hi = paired_ci(per_doc["extractive"][k], per_doc["lexrank"][k])
            print(f"  {label}  {d:+6.2f}  [{lo:+.2f}, {hi:+.2f}]")


def main(argv):
    if len(argv) == 3 and argv[0] == "convert":
        convert(argv[1], argv[2])
    elif len(argv) in (3, 4) and argv[0] == "score":
        score(*argv[1:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
