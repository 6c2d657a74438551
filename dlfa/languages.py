"""Language names and families for labels and grouping in the app.

Covers every language of the registry's sources (UD / Parallel UD, XTREME UD-POS and PAN-X, XNLI, PAWS-X, XCOPA,
CoNLL-2002/2003, the classroom pack, XTREME's Tatoeba with its LASER codes). Families are the branch a reader expects (Germanic, Romance, Slavic, ...),
so "same family as English" reads as "Germanic".
"""

from __future__ import annotations

from collections.abc import Iterable

LANGUAGE_NAMES: dict[str, str] = {
    "af": "Afrikaans", "ar": "Arabic", "az": "Azerbaijani", "bg": "Bulgarian", "bn": "Bengali", "ca": "Catalan",
    "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek", "en": "English", "es": "Spanish",
    "et": "Estonian", "eu": "Basque", "fa": "Persian", "fi": "Finnish", "fr": "French", "ga": "Irish",
    "gl": "Galician", "gu": "Gujarati", "he": "Hebrew", "hi": "Hindi", "hr": "Croatian", "ht": "Haitian Creole",
    "hu": "Hungarian", "hy": "Armenian", "id": "Indonesian", "is": "Icelandic", "it": "Italian", "ja": "Japanese",
    "jv": "Javanese", "ka": "Georgian", "kk": "Kazakh", "ko": "Korean", "lt": "Lithuanian", "lv": "Latvian",
    "ml": "Malayalam", "mr": "Marathi", "ms": "Malay", "my": "Burmese", "nl": "Dutch", "no": "Norwegian",
    "pa": "Punjabi", "pl": "Polish", "pt": "Portuguese", "qu": "Quechua", "ro": "Romanian", "ru": "Russian",
    "sk": "Slovak", "sl": "Slovenian", "sr": "Serbian", "sv": "Swedish", "sw": "Swahili", "ta": "Tamil",
    "te": "Telugu", "th": "Thai", "tl": "Tagalog", "tr": "Turkish", "uk": "Ukrainian", "ur": "Urdu",
    "vi": "Vietnamese", "wo": "Wolof", "yo": "Yoruba", "zh": "Chinese",
}  # fmt: skip

_FAMILY_MEMBERS: dict[str, tuple[str, ...]] = {
    "Germanic": ("en", "de", "nl", "af", "sv", "da", "no", "is"),
    "Romance": ("fr", "es", "it", "pt", "ro", "ca", "gl"),
    "Slavic": ("ru", "uk", "bg", "cs", "pl", "sk", "sl", "hr", "sr"),
    "Baltic": ("lt", "lv"),
    "Hellenic": ("el",),
    "Celtic": ("ga",),
    "Armenian": ("hy",),
    "Indo-Iranian": ("hi", "ur", "bn", "mr", "fa", "gu", "pa"),
    "Uralic": ("fi", "et", "hu"),
    "Turkic": ("tr", "kk", "az"),
    "Semitic": ("ar", "he"),
    "Dravidian": ("ta", "te", "ml"),
    "Sino-Tibetan": ("zh", "my"),
    "Japonic": ("ja",),
    "Koreanic": ("ko",),
    "Austroasiatic": ("vi",),
    "Kra-Dai": ("th",),
    "Austronesian": ("id", "ms", "jv", "tl"),
    "Kartvelian": ("ka",),
    "Niger-Congo": ("sw", "yo", "wo"),
    "Quechuan": ("qu",),
    "Basque (isolate)": ("eu",),
    "Creole": ("ht",),
}
FAMILIES: dict[str, str] = {code: family for family, codes in _FAMILY_MEMBERS.items() for code in codes}
OTHER = "Other"

# XTREME's 36 Tatoeba languages: project (ISO 639-1) code -> LASER's three-letter code in the file names
# (tatoeba.deu-eng.deu) and in google/xtreme's configurations (tatoeba.deu)
TATOEBA_LASER_CODES: dict[str, str] = {
    "af": "afr", "ar": "ara", "bg": "bul", "bn": "ben", "de": "deu", "el": "ell", "es": "spa", "et": "est",
    "eu": "eus", "fa": "pes", "fi": "fin", "fr": "fra", "he": "heb", "hi": "hin", "hu": "hun", "id": "ind",
    "it": "ita", "ja": "jpn", "jv": "jav", "ka": "kat", "kk": "kaz", "ko": "kor", "ml": "mal", "mr": "mar",
    "nl": "nld", "pt": "por", "ru": "rus", "sw": "swh", "ta": "tam", "te": "tel", "th": "tha", "tl": "tgl",
    "tr": "tur", "ur": "urd", "vi": "vie", "zh": "cmn",
}  # fmt: skip
LASER_TO_PROJECT: dict[str, str] = {laser: code for code, laser in TATOEBA_LASER_CODES.items()}


def language_label(code: str) -> str:
    """"German (de)"; the bare code when the name is unknown."""
    name = LANGUAGE_NAMES.get(code)
    return f"{name} ({code})" if name else code


def family_of(code: str) -> str:
    """The family/branch label of `code`, "Other" when unknown."""
    return FAMILIES.get(code, OTHER)


def group_by_family(codes: Iterable[str]) -> dict[str, list[str]]:
    """Family -> codes (in the given order, duplicates dropped). English's family first, then the families in the
    order of FAMILIES' definition, "Other" last."""
    order = {family: rank for rank, family in enumerate(_FAMILY_MEMBERS)}
    groups: dict[str, list[str]] = {}
    for code in dict.fromkeys(codes):
        groups.setdefault(family_of(code), []).append(code)
    english = family_of("en")
    return dict(
        sorted(groups.items(), key=lambda item: (item[0] != english, item[0] == OTHER, order.get(item[0], len(order))))
    )
