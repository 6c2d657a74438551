"""The tasks: each task's TaskInfo with where its data lives, under a data root (or the classroom pack) and on the
hub. The table holds the paper's four XTREME targets (udpos, panx, xnli, pawsx), the QA targets (xquad, mlqa,
tydiqa; on the hub trained on SQuAD), sentence retrieval (tatoeba, nothing trained), the English intermediate
tasks and the classroom tasks.

Intermediate tasks (English, `intermediate=True`): sst2, cola, mrpc, qqp, qnli, rte, mnli, boolq, cb, wic,
conll-ner (CoNLL-2003 English, zero-shot on German, Spanish, Dutch), the multiple-choice tasks commonsenseqa,
xcopa (COPA, also zero-shot on XCOPA), cosmosqa, hellaswag and siqa (Social IQa, which the XCOPA paper trains before
COPA), and squad (SQuAD v1.1 question answering); qqp, mnli, hellaswag, siqa and squad have no local files.
Classroom tasks read the offline pack (dlfa.data.classroom), whatever the source.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlfa.data.base import TaskInfo
from dlfa.data.file_layouts import (conll_files, english_files, item_split_files, no_local_files, pack_files,
                                    panx_files, parts_of, qa_files, udpos_files, whole_files, xcopa_files)
from dlfa.data.hub_layouts import (HUB_PANX_LANGUAGES, HUB_PAWSX_LANGUAGES, HUB_UDPOS_CONFIGS, HUB_XNLI_LANGUAGES,
                                   hub_english, hub_qa, hub_xtreme)
from dlfa.data.readers import CONLL_NER_TAGS, PANX_TAGS, UPOS_TAGS
from dlfa.data.splits import THIRDS, TRAIN_DEV, Layout
from dlfa.data.tatoeba import hub_tatoeba, tatoeba_files


@dataclass(frozen=True)
class TaskSpec:
    """A task and where its data lives: `files(root, info)` under a data root, `hub(loader)` on the hub."""

    info: TaskInfo
    files: Callable[[Path, TaskInfo], Layout]  # layout under a data root (or under the pack for classroom tasks)
    classroom: bool = False
    hub: Callable[[Callable[[str, str], Any]], Layout] | None = None  # layout on the hub, given its loader


_NLI3 = ("entailment", "neutral", "contradiction")
_NLI2 = ("entailment", "not_entailment")
_SUPERGLUE = "english/SuperGLUE_val_and_FewGLUE"
_CSQA = "english/CommonsenseQA/official"
# fmt: off
TASKS = [
    # the paper's four target tasks
    TaskSpec(TaskInfo("udpos", "token", UPOS_TAGS, "accuracy",
                      "Universal POS tagging: UD English-EWT, Parallel UD, XTREME UD-POS"),
             udpos_files,
             hub=hub_xtreme(lambda lang: f"udpos.{HUB_UDPOS_CONFIGS[lang]}", HUB_UDPOS_CONFIGS, "udpos")),
    TaskSpec(TaskInfo("panx", "token", PANX_TAGS, "entity_f1", "Named entities (PER, ORG, LOC): PAN-X / WikiANN"),
             panx_files,
             hub=hub_xtreme(lambda lang: f"PAN-X.{lang}", HUB_PANX_LANGUAGES, "panx")),
    TaskSpec(TaskInfo("xnli", "pair", _NLI3, "accuracy",
                      "Natural language inference: XNLI (item split of the dev and test sets pooled)"),
             lambda root, task: item_split_files(root / "pair" / "xnli_xtreme", "xnli", task,
                                                 root / "pair" / "xnli_test_derived"),
             hub=hub_xtreme(lambda lang: "XNLI", HUB_XNLI_LANGUAGES, "xnli", by_language=True)),
    TaskSpec(TaskInfo("pawsx", "pair", ("different", "paraphrase"), "accuracy",
                      "Paraphrase identification: PAWS-X (item split of the dev sets: no more labeled English data "
                      "here)"),
             lambda root, task: item_split_files(root / "pair" / "pawsx_xtreme", "pawsx", task),
             hub=hub_xtreme(lambda lang: f"PAWS-X.{lang}", HUB_PAWSX_LANGUAGES, "pawsx")),
    # extractive question answering (XTREME's QA targets), trained on part of the English questions
    TaskSpec(TaskInfo("xquad", "qa", (), "span_f1",
                      "Question answering: XQuAD, 10 languages (paragraph split of the English questions: no SQuAD "
                      "train set here)"),
             qa_files("xquad", "qa/xquad"), hub=hub_qa("xquad")),
    TaskSpec(TaskInfo("mlqa", "qa", (), "span_f1",
                      "Question answering: MLQA dev, same-language pairs (paragraph split of the English questions)"),
             qa_files("mlqa", "qa/mlqa_dev"), hub=hub_qa("mlqa")),
    TaskSpec(TaskInfo("tydiqa", "qa", (), "span_f1",
                      "Question answering: TyDiQA-GoldP, 9 languages (hub only: SQuAD train cut 90/10 by paragraph, "
                      "google/xtreme tydiqa validation as test)"),
             no_local_files, hub=hub_qa("tydiqa")),
    # sentence retrieval (XTREME's Tatoeba): no training, each language's pairs are its test set
    TaskSpec(TaskInfo("tatoeba", "retrieval", (), "retrieval_accuracy",
                      "Sentence retrieval: Tatoeba, XTREME's 36 languages paired with English (no training: "
                      "nearest neighbour of mean-pooled states, both directions)"),
             tatoeba_files, hub=hub_tatoeba),
    # English intermediate tasks
    TaskSpec(TaskInfo("sst2", "sentence", ("negative", "positive"), "accuracy",
                      "Sentiment of movie-review phrases: GLUE SST-2", intermediate=True),
             english_files(whole_files("english/SST-2", train="train.tsv", dev="dev.tsv", test="test-labeled.tsv"),
                           "tsv", fmt="sst2"),
             hub=hub_english("nyu-mll/glue", "sst2", "sst2")),
    TaskSpec(TaskInfo("cola", "sentence", ("unacceptable", "acceptable"), "mcc",
                      "Grammatical acceptability: CoLA (out-of-domain dev as test)", intermediate=True),
             english_files(whole_files("english/CoLA/raw", train="in_domain_train.tsv", dev="in_domain_dev.tsv",
                                       test="out_of_domain_dev.tsv"), "tsv", fmt="cola"),
             hub=hub_english("nyu-mll/glue", "cola", "cola")),
    TaskSpec(TaskInfo("mrpc", "pair", ("not_paraphrase", "paraphrase"), "f1",
                      "Paraphrase: MSR Paraphrase Corpus (train cut 90/10, original test)", intermediate=True),
             english_files({**parts_of("english/MRPC/msr_paraphrase_train.txt", TRAIN_DEV),
                            **whole_files("english/MRPC", test="msr_paraphrase_test.txt")}, "tsv", fmt="mrpc"),
             hub=hub_english("nyu-mll/glue", "mrpc", "mrpc")),
    TaskSpec(TaskInfo("qqp", "pair", ("not_duplicate", "duplicate"), "f1",
                      "Duplicate questions: GLUE QQP (hub only: train cut 90/10, validation as test)",
                      intermediate=True),
             no_local_files, hub=hub_english("nyu-mll/glue", "qqp", "qqp")),
    TaskSpec(TaskInfo("mnli", "pair", _NLI3, "accuracy",
                      "Natural language inference: GLUE MNLI (hub only: train cut 90/10, validation_matched as "
                      "test)", intermediate=True),
             no_local_files, hub=hub_english("nyu-mll/glue", "mnli", "mnli", "validation_matched")),
    TaskSpec(TaskInfo("qnli", "pair", _NLI2, "accuracy", "Question-answer entailment: GLUE QNLI dev cut 80/10/10",
                      intermediate=True),
             english_files(parts_of("english/QNLI/dev.tsv", THIRDS), "tsv", fmt="qnli"),
             hub=hub_english("nyu-mll/glue", "qnli", "qnli")),
    TaskSpec(TaskInfo("rte", "pair", _NLI2, "accuracy", "Textual entailment: GLUE RTE (train cut 90/10, dev as test)",
                      intermediate=True),
             english_files({**parts_of("english/RTE/train.tsv", TRAIN_DEV),
                            **whole_files("english/RTE", test="dev.tsv")}, "tsv", fmt="rte"),
             hub=hub_english("nyu-mll/glue", "rte", "rte")),
    TaskSpec(TaskInfo("boolq", "pair", ("false", "true"), "accuracy",
                      "Yes/no questions on a passage: SuperGLUE BoolQ val cut 80/10/10", intermediate=True),
             english_files(parts_of(f"{_SUPERGLUE}/BoolQ/val.jsonl", THIRDS), "jsonl", convert="boolq"),
             hub=hub_english("aps/super_glue", "boolq", "boolq")),
    TaskSpec(TaskInfo("cb", "pair", _NLI3, "accuracy",
                      "CommitmentBank NLI: FewGLUE train and dev32 (32 each), SuperGLUE val as test",
                      intermediate=True),
             english_files(whole_files(f"{_SUPERGLUE}/CB", train="train.jsonl", dev="dev32.jsonl", test="val.jsonl"),
                           "jsonl", convert="cb"),
             hub=hub_english("aps/super_glue", "cb", "cb")),
    TaskSpec(TaskInfo("wic", "pair", ("false", "true"), "accuracy", "Word in context: SuperGLUE WiC val cut 80/10/10",
                      intermediate=True),
             english_files(parts_of(f"{_SUPERGLUE}/WiC/val.jsonl", THIRDS), "jsonl", convert="wic"),
             hub=hub_english("aps/super_glue", "wic", "wic")),
    TaskSpec(TaskInfo("commonsenseqa", "multiple_choice", tuple("ABCDE"), "accuracy",
                      "Commonsense questions, 5 choices: CommonsenseQA official train (9,741) cut 90/10, official "
                      "dev as test", intermediate=True),
             english_files({**parts_of(f"{_CSQA}/train_rand_split.jsonl", TRAIN_DEV),
                            **whole_files(_CSQA, test="dev_rand_split.jsonl")}, "jsonl", convert="commonsenseqa"),
             hub=hub_english("tau/commonsense_qa", None, "commonsenseqa")),
    TaskSpec(TaskInfo("xcopa", "multiple_choice", ("choice1", "choice2"), "accuracy",
                      "Causal reasoning, 2 choices: COPA English train cut 90/10, COPA and XCOPA validation as test",
                      intermediate=True),
             xcopa_files, hub=hub_english("aps/super_glue", "copa", "copa")),
    TaskSpec(TaskInfo("cosmosqa", "multiple_choice", ("0", "1", "2", "3"), "accuracy",
                      "Reading comprehension with commonsense, 4 choices: Cosmos QA dev cut 80/10/10 (train on the "
                      "hub only)", intermediate=True),
             english_files(parts_of("english/CosmosQA/valid.csv", THIRDS), "csv", convert="cosmosqa"),
             hub=hub_english("allenai/cosmos_qa", None, "cosmosqa")),
    TaskSpec(TaskInfo("hellaswag", "multiple_choice", ("0", "1", "2", "3"), "accuracy",
                      "Sentence completion, 4 endings: HellaSwag (hub only: train cut 90/10, validation as test)",
                      intermediate=True),
             no_local_files, hub=hub_english("Rowan/hellaswag", None, "hellaswag")),
    TaskSpec(TaskInfo("siqa", "multiple_choice", ("A", "B", "C"), "accuracy",
                      "Social commonsense, 3 answers: Social IQa (hub only: train cut 90/10, validation as test); the "
                      "XCOPA paper's intermediate task before COPA", intermediate=True),
             no_local_files, hub=hub_english("allenai/social_i_qa", None, "siqa")),
    TaskSpec(TaskInfo("squad", "qa", (), "span_f1",
                      "Question answering: SQuAD v1.1 (hub only: train cut 90/10 by paragraph, validation as test; "
                      "XQuAD's English is drawn from that validation set, so a study whose target is xquad must not "
                      "also use squad's test)", intermediate=True),
             no_local_files, hub=hub_qa("squad")),
    TaskSpec(TaskInfo("conll-ner", "token", CONLL_NER_TAGS, "entity_f1",
                      "Named entities: CoNLL-2003 English; CoNLL-2002/2003 German, Spanish, Dutch as test",
                      intermediate=True),
             conll_files),
    # the offline classroom pack (dlfa.data.classroom)
    TaskSpec(TaskInfo("pos-classroom", "token", UPOS_TAGS, "accuracy",
                      "Classroom POS: English OANC/WSJ; Turkish, German, Spanish, Italian, Dutch (universal tags)",
                      intermediate=True),
             pack_files("pos", "token_tag"), classroom=True),
    TaskSpec(TaskInfo("sentiment-classroom", "sentence", ("negative", "positive"), "accuracy",
                      "Classroom sentiment: English movie reviews; Dutch, French, German book reviews",
                      intermediate=True),
             pack_files("sentiment", "jsonl", convert="sentence"), classroom=True),
]
# fmt: on
TASKS_BY_NAME = {spec.info.name: spec for spec in TASKS}
