"""The source formats of the classroom pack (dlfa.data.classroom): the packages' tagsets mapped to UPOS, and
parsers of their files (slash-tagged corpora, the Turkish treebanks' CoNLL-U, VADER's movie-review ratings, the
polarity CSVs, chatterbot's YAML conversations). Each parser takes the file's text, read from the archive in memory.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Callable

import yaml

from dlfa.data.readers import UPOS_TAGS

Sentence = list[tuple[str, str]]  # (word, UPOS)


# ----------------------------------------------------------------------------------------------------
# Tagsets -> UPOS

_PUNCT = {",", ".", ":", "(", ")", '"', "``", "''", "-", "-LRB-", "-RRB-", "HYPH", "NFP", "$,", "$.", "$("}
PENN_TO_UPOS = {
    "NN": "NOUN", "NNS": "NOUN", "NNP": "PROPN", "NNPS": "PROPN", "JJ": "ADJ", "JJR": "ADJ", "JJS": "ADJ",
    "RB": "ADV", "RBR": "ADV", "RBS": "ADV", "WRB": "ADV", "VB": "VERB", "VBD": "VERB", "VBG": "VERB",
    "VBN": "VERB", "VBP": "VERB", "VBZ": "VERB", "MD": "AUX", "IN": "ADP", "RP": "ADP", "TO": "PART",
    "POS": "PART", "DT": "DET", "PDT": "DET", "WDT": "DET", "PRP": "PRON", "PRP$": "PRON", "WP": "PRON",
    "WP$": "PRON", "EX": "PRON", "CC": "CCONJ", "CD": "NUM", "UH": "INTJ", "FW": "X", "LS": "X", "SYM": "SYM",
    "$": "SYM", "#": "SYM",
    "FC": "PUNCT",  # the Italian WaCKy sample marks : ; - this way
}  # fmt: skip
STTS_TO_UPOS = {
    "ADJA": "ADJ", "ADJD": "ADJ", "ADV": "ADV", "APPR": "ADP", "APPRART": "ADP", "APPO": "ADP", "APZR": "ADP",
    "ART": "DET", "CARD": "NUM", "FM": "X", "ITJ": "INTJ", "KOUI": "SCONJ", "KOUS": "SCONJ", "KON": "CCONJ",
    "KOKOM": "CCONJ", "NN": "NOUN", "NE": "PROPN", "PDS": "PRON", "PDAT": "DET", "PIS": "PRON", "PIAT": "DET",
    "PIDAT": "DET", "PPER": "PRON", "PPOSS": "PRON", "PPOSAT": "DET", "PRELS": "PRON", "PRELAT": "DET",
    "PRF": "PRON", "PWS": "PRON", "PWAT": "DET", "PWAV": "ADV", "PROAV": "ADV", "PAV": "ADV", "PTKZU": "PART",
    "PTKNEG": "PART", "PTKVZ": "ADP", "PTKANT": "INTJ", "PTKA": "PART", "TRUNC": "X", "VVFIN": "VERB",
    "VVIMP": "VERB", "VVINF": "VERB", "VVIZU": "VERB", "VVPP": "VERB", "VAFIN": "AUX", "VAIMP": "AUX",
    "VAINF": "AUX", "VAPP": "AUX", "VMFIN": "AUX", "VMINF": "AUX", "VMPP": "AUX", "XY": "X",
}  # fmt: skip
# Parole / EAGLES short tags (Spanish Wikicorpus), matched by prefix, longest first
PAROLE_PREFIXES = (
    ("NP", "PROPN"), ("VA", "AUX"), ("VS", "AUX"), ("CC", "CCONJ"), ("CS", "SCONJ"), ("F", "PUNCT"),
    ("N", "NOUN"), ("A", "ADJ"), ("V", "VERB"), ("S", "ADP"), ("D", "DET"), ("P", "PRON"), ("R", "ADV"),
    ("I", "INTJ"), ("W", "NUM"), ("Z", "NUM"),
)  # fmt: skip
# UD tags "be" (English) and "essere" (Italian) AUX, as German, Dutch and Spanish tagsets do; Penn says VB*
COPULA_FORMS = {
    "en": {"be", "is", "are", "was", "were", "been", "being", "am", "'s", "'re", "'m"},
    "it": {"essere", "è", "e'", "sono", "sei", "siamo", "siete", "era", "erano", "ero", "eri", "eravamo", "fu",
           "furono", "sarà", "saranno", "sarebbe", "sarebbero", "sia", "siano", "fosse", "fossero", "stato",
           "stata", "stati", "state", "essendo"},
}  # fmt: skip
TURKISH_XPOS = {"NNP": "PROPN", "SYM": "SYM", "UH": "INTJ", "NFP": "PUNCT", "ADD": "X"}
TURKISH_UPOS = {"CONJ": "CCONJ", "PRT": "PART", "ONOM": "X", "AFFIX": "X", ".": "PUNCT"}


def penn_to_upos(word: str, tag: str, language: str = "en") -> str:
    """Penn Treebank (English; the reduced Italian WaCKy set), copula forms as AUX."""
    tag = tag.split("|")[0]  # an ambiguous "VBG|NN" keeps its first reading
    if tag.startswith("VB") and word.lower() in COPULA_FORMS[language]:
        return "AUX"
    return "PUNCT" if tag in _PUNCT else PENN_TO_UPOS.get(tag, "X")


def stts_to_upos(word: str, tag: str) -> str:
    return "PUNCT" if tag in _PUNCT else STTS_TO_UPOS.get(tag, "X")


def parole_to_upos(word: str, tag: str) -> str:
    return next((upos for prefix, upos in PAROLE_PREFIXES if tag.startswith(prefix)), "X")


def wotan_to_upos(word: str, tag: str) -> str:
    """Wotan (Dutch), e.g. `N(eigen,ev,neut)`: the main class, refined by its features."""
    main, _, rest = tag.partition("(")
    features = set(rest.rstrip(")").split(","))
    if main == "N":
        return "PROPN" if "eigen" in features else "NOUN"
    if main == "V":
        return "AUX" if features & {"hulp", "hulpofkopp"} else "VERB"
    if main == "Pron":
        return "DET" if "attr" in features and "bez" not in features else "PRON"
    if main == "Conj":
        return "SCONJ" if "onder" in features else "CCONJ"
    if main == "Num":
        return "ADJ" if "rang" in features else "NUM"
    simple = {"Art": "DET", "Adj": "ADJ", "Adv": "ADV", "Prep": "ADP", "Punc": "PUNCT", "Int": "INTJ", "Misc": "X"}
    return simple.get(main, "X")


def turkish_to_upos(upos: str, xpos: str) -> str:
    if xpos in TURKISH_XPOS:
        return TURKISH_XPOS[xpos]
    upos = TURKISH_UPOS.get(upos, upos)
    return upos if upos in UPOS_TAGS else "X"


# ----------------------------------------------------------------------------------------------------
# Parsing the package files


def parse_slash_tagged(text: str, to_upos: Callable[[str, str], str]) -> list[Sentence]:
    """pattern's `word/TAG word/TAG ...` lines (one sentence per line, `&slash;` for a slash in a word);
    `to_upos(word, tag)` maps the tags."""
    sentences = []
    for line in text.splitlines():
        sentence = []
        for item in line.split():
            word, _, tag = item.rpartition("/")
            if word:
                word = word.replace("&slash;", "/")
                sentence.append((word, to_upos(word, tag)))
        if sentence:
            sentences.append(sentence)
    return sentences


def parse_turkish_conllu(text: str) -> list[Sentence]:
    """Turkish treebank CoNLL-U whose tokens are inflectional groups: each token with deprel `ig` is merged into
    the following one, and the merged word keeps the last group's tag."""
    sentences = []
    for block in text.split("\n\n"):
        sentence: Sentence = []
        pending: list[str] = []
        last_tag = "X"
        for line in block.splitlines():
            columns = line.split("\t")
            if line.startswith("#") or len(columns) != 10 or not columns[0].isdigit():
                continue
            form, upos, xpos, deprel = columns[1], columns[3], columns[4], columns[7]
            tag = turkish_to_upos(upos, xpos)
            if deprel == "ig":
                pending.append(form)
                last_tag = tag
                continue
            sentence.append(("".join(pending) + form, tag))
            pending = []
        if pending:  # a group with nothing after it stays a word of its own
            sentence.append(("".join(pending), last_tag))
        if sentence:
            sentences.append(sentence)
    return sentences


def _clean(text: str) -> str:
    return " ".join(html.unescape(text).split())


def parse_vader(text: str) -> list[dict]:
    """`id<TAB>mean rating<TAB>sentence` lines: label by the sign of the rating, rating 0 dropped."""
    rows = []
    for line in text.splitlines():
        columns = line.split("\t")
        if len(columns) == 3 and float(columns[1]) != 0:
            rows.append({"text": _clean(columns[2]), "label": "positive" if float(columns[1]) > 0 else "negative"})
    return rows


def parse_polarity_csv(text: str) -> list[dict]:
    """pattern's polarity CSVs: one column is the score ("1" / "-1"), the other the review."""
    rows = []
    for record in csv.reader(io.StringIO(text.lstrip("\ufeff"))):
        if len(record) != 2:
            continue
        score, review = (record[0], record[1]) if record[0] in ("1", "-1") else (record[1], record[0])
        if score in ("1", "-1") and review.strip():
            rows.append({"text": _clean(review), "label": "positive" if score == "1" else "negative"})
    return rows


def align_chatterbot(english: str, other: str) -> list[tuple[str, str]]:
    """Utterance pairs of two chatterbot corpus files, when their conversations line up one to one."""

    def conversations(text: str) -> list:
        document = yaml.load(text, Loader=yaml.BaseLoader)  # BaseLoader: every value a string ("Yes" stays "Yes")
        return (document.get("conversations") if isinstance(document, dict) else None) or []

    english_conversations, other_conversations = conversations(english), conversations(other)
    if len(english_conversations) != len(other_conversations):
        return []
    pairs = []
    for a, b in zip(english_conversations, other_conversations):
        if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            pairs.extend((_clean(x), _clean(y)) for x, y in zip(a, b) if isinstance(x, str) and isinstance(y, str))
    return pairs
