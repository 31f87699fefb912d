"""Category names as words: normalisation, singular forms, head nouns, and sound-label parsing.

Visual names come as ``bus_(vehicle)``, ``computer_keyboard``, ``Bat (Animal)``; VGGSound labels
as ``dog barking``, ``playing acoustic guitar``, ``alligators, crocodiles hissing``. Matching
compares them as tuples of lower-case singular words:

* :func:`split_disambiguator` separates a parenthetical sense (``bus_(vehicle)`` -> ``bus``,
  ``vehicle``);
* :func:`phrase_words` lower-cases, turns underscores into spaces, drops parentheticals and makes
  every word singular (``lions`` -> ``lion``, ``people`` -> ``person``, ``buses`` -> ``bus``);
* English compounds are head-final, so the last word is the head noun (``dog collar`` is a collar,
  ``acoustic guitar`` a guitar), except before ``of`` (``bottle of wine`` is a bottle);
* :func:`parse_sound_label` finds what makes the sound: the subject of a noun-first label
  (``dog barking`` -> dog), the objects of a verb-first label (``playing acoustic guitar`` ->
  acoustic guitar, ``typing on computer keyboard`` -> computer keyboard), the whole of a bare noun
  label (``helicopter``), and comma-separated alternatives (``alligators, crocodiles hissing`` ->
  alligator, crocodile).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "SoundLabel",
    "agent_nouns",
    "SoundSource",
    "compact",
    "gerund_stems",
    "head_and_modifiers",
    "is_gerund",
    "normalize",
    "parse_sound_label",
    "phrase_words",
    "singularize",
    "split_disambiguator",
]

_PAREN = re.compile(r"\s*\(([^()]*)\)")
_SPACES = re.compile(r"\s+")
# characters that are not part of a word; hyphens and apostrophes are (clip-clop, doll's)
_NON_WORD = re.compile(r"[^\w\s'\-]")

# English irregular plurals (morphology, not matching exceptions)
_IRREGULAR_PLURALS = {
    "people": "person",
    "children": "child",
    "men": "man",
    "women": "woman",
    "mice": "mouse",
    "geese": "goose",
    "feet": "foot",
    "teeth": "tooth",
    "oxen": "ox",
    "lice": "louse",
    "knives": "knife",
    "wives": "wife",
    "leaves": "leaf",
    "wolves": "wolf",
    "calves": "calf",
    "halves": "half",
    "shelves": "shelf",
    "loaves": "loaf",
    "thieves": "thief",
    "scarves": "scarf",
    "hooves": "hoof",
    "potatoes": "potato",
    "tomatoes": "tomato",
    "mangoes": "mango",
    "heroes": "hero",
    "echoes": "echo",
    "volcanoes": "volcano",
    "tornadoes": "tornado",
    "dominoes": "domino",
    "cacti": "cactus",
    "fungi": "fungus",
}
# words ending in -s that are singular (or the same in both numbers)
_S_SINGULARS = frozenset(
    {
        "series",
        "species",
        "news",
        "chess",
        "billiards",
        "measles",
        "physics",
        "athletics",
        "gymnastics",
        "scissors",
        "trousers",
        "pants",
        "jeans",
        "shorts",
        "glasses",
        "binoculars",
        "pliers",
        "tongs",
        "tweezers",
        "bovinae",
        "christmas",
        "thermos",
        "octopus",
        "hummus",
        "lens",
        "canvas",
        "atlas",
        "gas",
        "yes",
    }
)
# connecting words inside labels
_PREPOSITIONS = frozenset({"on", "with", "in", "at", "into", "onto", "from", "by", "of", "through"})
_CONJUNCTIONS = frozenset({"or", "and", "&"})
_ARTICLES = frozenset({"a", "an", "the"})
# gerund-like words that are nouns (an -ing word ends a noun phrase only if it is not one of these)
_ING_NOUNS = frozenset(
    {
        "ceiling",
        "building",
        "string",
        "ring",
        "earring",
        "king",
        "thing",
        "spring",
        "swing",
        "sling",
        "wing",
        "pudding",
        "icing",
        "awning",
        "clothing",
        "bedding",
        "railing",
        "stuffing",
        "herring",
        "wedding",
        "painting",
        "drawing",
        "duckling",
        "sapling",
        "dumpling",
        "darling",
        "sibling",
        "viking",
        "lightning",
        "evening",
        "morning",
        "stocking",
        "frosting",
        "sing",
    }
)


def split_disambiguator(name: str) -> tuple[str, str | None]:
    """Split ``bus_(vehicle)`` into ``("bus", "vehicle")`` and ``Bat (Animal)`` into
    ``("Bat", "Animal")``; names without a parenthetical give ``(name, None)``.

    Several parentheticals are joined with a space; the base keeps its original spelling.
    """
    found = _PAREN.findall(name)
    if not found:
        return name.strip(), None
    base = _PAREN.sub("", name).strip(" _")
    disambiguator = " ".join(part.replace("_", " ").strip() for part in found).strip()
    return base, disambiguator or None


def normalize(text: str) -> str:
    """Lower case, underscores as spaces, parentheticals and punctuation removed, single spaces.

    >>> normalize("bus_(vehicle)")
    'bus'
    >>> normalize("Bee, wasp, etc. buzzing")
    'bee wasp etc buzzing'
    """
    text = _PAREN.sub(" ", text.replace("_", " ")).lower()
    text = _NON_WORD.sub(" ", text)
    return _SPACES.sub(" ", text).strip(" -'")


def singularize(word: str) -> str:
    """Singular form of one lower-case English noun (rule-based; unchanged when not a plural).

    >>> [singularize(w) for w in ("lions", "buses", "people", "puppies", "glass", "bus")]
    ['lion', 'bus', 'person', 'puppy', 'glass', 'bus']
    """
    if word in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[word]
    if "-" in word:  # pug-dogs -> pug-dog
        head, _, last = word.rpartition("-")
        return f"{head}-{singularize(last)}" if last else word
    if len(word) <= 3 or word in _S_SINGULARS or not word.endswith("s"):
        return word
    if word.endswith(("ss", "us", "is", "ous")):
        return word
    if word.endswith("ies") and len(word) > 4 and word[-4] not in "aeiou":
        return word[:-3] + "y"
    if word.endswith("buses"):
        return word[:-2]
    if word.endswith(("ches", "shes", "sses", "xes", "zzes")):
        return word[:-2]
    return word[:-1]


def phrase_words(text: str) -> tuple[str, ...]:
    """Normalised words of a name or phrase, each made singular (``Lions`` -> ``("lion",)``)."""
    return tuple(singularize(w) for w in normalize(text).split() if w not in ("etc",))


def compact(words: tuple[str, ...] | str) -> str:
    """The words run together without spaces or hyphens (``cell phone`` == ``cellphone``)."""
    text = words if isinstance(words, str) else "".join(words)
    return text.replace(" ", "").replace("-", "").replace("'", "")


def head_and_modifiers(words: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """The head noun and its modifiers of a noun phrase.

    English compounds are head-final (``dog collar`` is a collar); a phrase with ``of`` has its
    head before it (``bottle of wine`` is a bottle), and a coordination (``salt and pepper
    shaker``) keeps the last noun.
    """
    if not words:
        raise ValueError("empty phrase")
    if "of" in words[1:]:
        words = words[: words.index("of", 1)]
    return words[-1], tuple(words[:-1])


def is_gerund(word: str) -> bool:
    """True for an -ing verb form used as an action (``barking``), not an -ing noun (``ring``)."""
    return len(word) > 4 and word.endswith("ing") and word not in _ING_NOUNS


def gerund_stems(word: str) -> tuple[str, ...]:
    """Possible base forms of a gerund: ``hammering`` -> hammer, ``skiing`` -> ski,
    ``chainsawing`` -> chainsaw, ``shaving`` -> shave, ``tapping`` -> tap."""
    if not is_gerund(word):
        return ()
    stem = word[:-3]
    stems = [stem, stem + "e"]
    if len(stem) > 2 and stem[-1] == stem[-2] and stem[-1] not in "aeiouls":
        stems.insert(0, stem[:-1])  # tapping -> tap, swimming -> swim
    return tuple(dict.fromkeys(s for s in stems if len(s) > 1))


def agent_nouns(gerund: str) -> tuple[str, ...]:
    """Nouns for the doer of a gerund's action: ``mowing`` -> mower, ``drying`` -> dryer,
    drier, ``grinding`` -> grinder (``lawn mowing`` is done by a lawn mower)."""
    nouns: list[str] = []
    for stem in gerund_stems(gerund):
        if stem.endswith("e"):
            nouns.append(stem + "r")
        else:
            nouns.append(stem + "er")
            if stem.endswith("y"):
                nouns.append(stem[:-1] + "ier")
    return tuple(dict.fromkeys(nouns))


Role = Literal["subject", "object", "whole"]


@dataclass(frozen=True)
class SoundSource:
    """A noun phrase that may name what makes a sound.

    Args:
        words: the phrase, normalised and singular (``("acoustic", "guitar")``).
        role: ``subject`` (before the action: ``dog`` in ``dog barking``), ``object`` (after the
            verb of a verb-first label: ``acoustic guitar`` in ``playing acoustic guitar``) or
            ``whole`` (the label is a bare noun phrase: ``helicopter``, ``horse clip-clop``).
        preposition: for objects, the preposition before the phrase (``on`` in ``typing on
            computer keyboard``), None for a direct object.
        verb: for objects, the verb of the label (``playing``).
    """

    words: tuple[str, ...]
    role: Role
    preposition: str | None = None
    verb: str | None = None

    @property
    def head(self) -> str:
        return head_and_modifiers(self.words)[0]

    @property
    def modifiers(self) -> tuple[str, ...]:
        return head_and_modifiers(self.words)[1]

    @property
    def text(self) -> str:
        return " ".join(self.words)


@dataclass(frozen=True)
class SoundLabel:
    """A parsed VGGSound label.

    Args:
        label: the label verbatim.
        sources: candidate sound sources, in label order, without duplicates.
        actions: the action words (gerunds and the words after them: ``barking``, ``passing by``).
        verb_stems: base forms of the label's gerunds (``chainsawing`` -> chainsaw, chainsawe),
            which may name a tool (``skateboarding`` -> skateboard).
    """

    label: str
    sources: tuple[SoundSource, ...]
    actions: tuple[str, ...]
    verb_stems: tuple[str, ...]


def _split_words(part: str) -> list[str]:
    return [w for w in normalize(part).split() if w not in ("etc",) and w not in _ARTICLES]


def _noun_phrases(words: list[str]) -> list[tuple[str | None, list[str]]]:
    """Split the words after a verb at prepositions: ``on computer keyboard with chalk`` ->
    ``[("on", [computer, keyboard]), ("with", [chalk])]``; a coordinated verb (``opening or
    closing car doors``) is skipped."""
    phrases: list[tuple[str | None, list[str]]] = []
    preposition: str | None = None
    current: list[str] = []
    after_conjunction = False
    for word in words:
        if word in _PREPOSITIONS:
            if current:
                phrases.append((preposition, current))
            preposition, current = word, []
        elif word in _CONJUNCTIONS and not current and not phrases:
            after_conjunction = True
        elif after_conjunction and not current and is_gerund(word):
            after_conjunction = False
        else:
            current.append(word)
    if current:
        phrases.append((preposition, current))
    return phrases


def _parse_part(words: list[str]) -> tuple[list[SoundSource], list[str], bool]:
    """Parse one comma-separated part. Returns (sources, action words, verb_first)."""
    if not words:
        return [], [], False
    if is_gerund(words[0]):
        if len(words) == 1:  # "tweeting", "skateboarding": an action alone
            return [], words, False
        verb = words[0]
        sources = [
            SoundSource(
                words=tuple(singularize(w) for w in phrase),
                role="object",
                preposition=preposition,
                verb=verb,
            )
            for preposition, phrase in _noun_phrases(words[1:])
        ]
        return sources, [verb], True
    # noun-first: the noun phrase runs to the first action word or preposition
    cut = len(words)
    for i, word in enumerate(words):
        if i > 0 and (is_gerund(word) or word in _PREPOSITIONS):
            cut = i
            break
    noun_phrase = tuple(singularize(w) for w in words[:cut])
    actions = words[cut:]
    role: Role = "subject" if actions else "whole"
    return [SoundSource(words=noun_phrase, role=role)], actions, False


def parse_sound_label(label: str) -> SoundLabel:
    """Find the candidate sound sources of a VGGSound label.

    Comma-separated parts are alternatives that share the action of the part that has one
    (``alligators, crocodiles hissing``: both hiss) or the verb of a verb-first part (``playing
    violin, fiddle``: the fiddle is played too). A part that is a single action word (``bird
    chirping, tweeting``) adds an action, not a source. Parentheticals are dropped (``police car
    (siren)`` -> police car).

    >>> [s.text for s in parse_sound_label("alligators, crocodiles hissing").sources]
    ['alligator', 'crocodile']
    >>> [s.text for s in parse_sound_label("typing on computer keyboard").sources]
    ['computer keyboard']
    """
    parts = [_split_words(part) for part in label.split(",")]
    parts = [p for p in parts if p]
    parsed = [_parse_part(p) for p in parts]
    shared_verb = next((acts[0] for (_, acts, vf) in parsed if vf), None)
    has_subject_action = any(acts for _, acts, vf in parsed if not vf)

    sources: list[SoundSource] = []
    actions: list[str] = []
    for part_sources, part_actions, vf in parsed:
        actions.extend(part_actions)
        for source in part_sources:
            if source.role == "whole" and shared_verb is not None and not vf:
                # a bare alternative beside a verb-first part: "playing violin, fiddle"
                source = SoundSource(words=source.words, role="object", verb=shared_verb)
            elif source.role == "whole" and has_subject_action:
                # a bare alternative beside a noun-first part: "alligators, crocodiles hissing"
                source = SoundSource(words=source.words, role="subject")
            if source.words and source not in sources:
                sources.append(source)
    stems: list[str] = []
    for word in actions:
        for part in word.split():
            stems.extend(gerund_stems(part))
    return SoundLabel(
        label=label,
        sources=tuple(sources),
        actions=tuple(dict.fromkeys(actions)),
        verb_stems=tuple(dict.fromkeys(stems)),
    )
