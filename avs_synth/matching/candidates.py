"""Audio-visual category matching: candidate pairs and the rule that accepts some of them.

**Candidates.** Every visual category has names (its name without the disambiguator, its
synonyms, its WordNet synset's lemma); every VGGSound label has sound sources found by
:func:`~avs_synth.matching.name_normalization.parse_sound_label` (``dog barking`` -> dog,
``playing acoustic guitar`` -> acoustic guitar). A visual name and a source are compared as
singular word tuples and related as

* ``exact``: the same phrase (``lions`` = ``lion``, ``cell phone`` = ``cellphone``);
* ``agent``: the name is the doer of a noun-first label's action (``lawn mower`` for ``lawn
  mowing``);
* ``owner``: the name is the first words of the source and the rest names no visual thing
  (``ambulance siren``, ``horse clip-clop``, ``car engine``: the siren, the clip-clop and the
  engine belong to the ambulance, the horse and the car);
* ``modifier``: the name is the first words of the source but the rest is a thing of its own
  (``car horn``, ``ice cream truck``, ``sea lion``);
* ``supertype``: the source is a kind of the name (``acoustic guitar`` for ``guitar``);
* ``subtype``: the name is a kind of the source (``computer mouse`` for ``mouse``);
* ``same-head``: the same head noun with other modifiers (``electric guitar``, ``acoustic
  guitar``);
* ``stem``: the name is the base of the label's verb (``skateboarding`` -> skateboard);
* ``fuzzy``: rapidfuzz similarity of the two phrases above a threshold (``hair drier``).

The method column is ``relation:kind``, the kind of visual name used (``name``, ``synonym``,
``lemma``); the score is the rapidfuzz ratio (0-100) of the two phrases.

**Automatic acceptance.** A candidate is accepted without review only when the visual category
*is* the sound's source and its sense is the sound's:

1. identity: the relation is ``exact``, ``agent`` or ``owner`` (never a kind of, a kind, or a
   modifier use: a dog collar is a collar, a computer mouse is not every mouse, a sea lion is not
   a lion);
2. own word: the name used is the category's own name or its synset's lemma, not a synonym
   (LVIS ``faucet`` has the synonym ``tap``, which is not the ``tap`` of ``tap dancing``);
3. known sense: the category has a WordNet synset, its own or that of the LVIS category of the
   same name (a name LVIS does not know has no established sense);
4. matching sense: a disambiguator (``mouse_(computer_equipment)``, ``turkey_(food)``) must fit
   the label's VGGSound group (``animals``, ``vehicle``, ``music``...: the disambiguator or the
   definition names the group's kind); without one, a synset whose lemma is the name must be
   the lemma's first, dominant WordNet sense (``bowl.n.03`` is a dish, not the bowl of
   ``singing bowl``);
5. a direct object is the source only when the category's definition says it is of the group's
   kind (``playing piano``: a keyboard *instrument*; ``driving buses``: a *vehicle*), as
   objects of other verbs are what is acted on (``chainsawing trees``, ``playing squash``).

Everything else is left ``pending`` with a note saying which test it failed; nothing is rejected
automatically.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from rapidfuzz import fuzz, process

from avs_synth.matching.name_normalization import (
    SoundLabel,
    SoundSource,
    agent_nouns,
    compact,
    is_gerund,
    parse_sound_label,
    phrase_words,
    split_disambiguator,
)
from avs_synth.records import Category

__all__ = [
    "GROUP_KINDS",
    "Candidate",
    "MatchConfig",
    "SenseLexicon",
    "VisualName",
    "VisualTerms",
    "match_categories",
    "visual_terms",
]

logger = logging.getLogger(__name__)

NameKind = Literal["name", "synonym", "lemma"]
Relation = Literal[
    "exact", "agent", "owner", "modifier", "supertype", "subtype", "same-head", "stem", "fuzzy"
]
_PRECEDENCE: tuple[str, ...] = (
    "exact",
    "agent",
    "owner",
    "supertype",
    "subtype",
    "modifier",
    "same-head",
    "stem",
    "fuzzy",
)

# What each VGGSound group says its sources are, as words a category's disambiguator or WordNet
# definition uses for that kind (``bus_(vehicle)``; piano: "a keyboard instrument ...").
GROUP_KINDS: dict[str, tuple[str, ...]] = {
    "animals": ("animal",),
    "vehicle": ("vehicle",),
    "music": ("music", "instrument"),
    "people": ("person", "people", "human"),
    "sports": ("sport",),
    "tools": ("tool",),
    "home": ("household",),
    "nature": (),
    "others": (),
}

_SYNSET = re.compile(r"^(?P<lemma>.+)\.(?P<pos>[a-z])\.(?P<number>\d+)$")


@dataclass(frozen=True)
class MatchConfig:
    """Candidate generation settings.

    Args:
        fuzzy_threshold: rapidfuzz ratio (0-100) above which two otherwise unrelated phrases
            still make a candidate (spelling variants: ``hair drier`` / ``hair dryer``).
        fuzzy_min_length: phrases shorter than this never match fuzzily (``cat`` / ``bat``).
    """

    fuzzy_threshold: float = 88.0
    fuzzy_min_length: int = 5


@dataclass(frozen=True)
class VisualName:
    """One name of a visual category as singular words, and what kind of name it is."""

    words: tuple[str, ...]
    kind: NameKind

    @property
    def text(self) -> str:
        return " ".join(self.words)


@dataclass(frozen=True)
class VisualTerms:
    """A visual category with its names and what is known of its sense.

    Args:
        category: the category.
        names: its names (own name first).
        synset: its WordNet synset, its own or borrowed from LVIS.
        disambiguator: its parenthetical sense (``computer equipment``), own or borrowed.
        definition: its WordNet gloss, own or borrowed.
        sense_via: where the sense comes from: ``own``, ``lvis name``, ``lvis synonym``,
            ``lvis synset`` or ``none``.
    """

    category: Category
    names: tuple[VisualName, ...]
    synset: str | None
    disambiguator: str | None
    definition: str | None
    sense_via: str


@dataclass(frozen=True)
class Candidate:
    """A candidate pair and the rule's verdict.

    Args:
        visual: the visual category.
        vggsound_label: the audio class, verbatim.
        score: rapidfuzz ratio (0-100) of the visual name and the sound source compared.
        method: ``relation:kind`` (``exact:name``, ``supertype:synonym``...).
        accepted: True when the acceptance rule accepts the pair.
        note: ``auto: ...`` why it was accepted, or ``review: ...`` why a person must decide.
    """

    visual: Category
    vggsound_label: str
    score: float
    method: str
    accepted: bool
    note: str


def _synset_parts(synset: str | None) -> tuple[tuple[str, ...], int] | None:
    if not synset:
        return None
    match = _SYNSET.match(synset.strip())
    if match is None:
        return None
    return phrase_words(match["lemma"]), int(match["number"])


class SenseLexicon:
    """LVIS categories indexed by name, synonym and synset: the sense dictionary that gives
    categories without a synset of their own (Open Images, COCO JSON) the sense of the LVIS
    category of the same name.

    Args:
        lvis: LVIS categories (names, synonyms, synsets, definitions).
    """

    def __init__(self, *, lvis: Sequence[Category]):
        self.by_name: dict[str, list[Category]] = defaultdict(list)
        self.by_synonym: dict[str, list[Category]] = defaultdict(list)
        self.by_synset: dict[str, list[Category]] = defaultdict(list)
        self.things: set[str] = set()
        for category in lvis:
            base, _ = split_disambiguator(category.name)
            self.by_name[compact(phrase_words(base))].append(category)
            for synonym in category.synonyms:
                syn_base, _ = split_disambiguator(synonym)
                key = compact(phrase_words(syn_base))
                if category not in self.by_synonym[key]:
                    self.by_synonym[key].append(category)
            if category.synset:
                self.by_synset[category.synset].append(category)
            self.things.update(compact(n.words) for n in _own_names(category))

    def link(self, category: Category) -> tuple[Category | None, str]:
        """The LVIS category giving ``category`` its sense, and how it was found."""
        if category.synset:
            found = self.by_synset.get(category.synset, [])
            return (found[0], "lvis synset") if len(found) == 1 else (None, "own")
        base, disambiguator = split_disambiguator(category.name)
        key = compact(phrase_words(base))
        for index, via in ((self.by_name, "lvis name"), (self.by_synonym, "lvis synonym")):
            found = index.get(key, [])
            if disambiguator is not None:
                wanted = compact(phrase_words(disambiguator))
                found = [
                    c
                    for c in found
                    if (d := split_disambiguator(c.name)[1]) and compact(phrase_words(d)) == wanted
                ]
            if len(found) == 1:
                return found[0], via
            if len(found) > 1:
                return None, "none"  # ambiguous: several LVIS senses share the name
        return None, "none"


def _own_names(category: Category) -> list[VisualName]:
    base, _ = split_disambiguator(category.name)
    names = [VisualName(phrase_words(base), "name")]
    for synonym in category.synonyms:
        syn_base, _ = split_disambiguator(synonym)
        names.append(VisualName(phrase_words(syn_base), "synonym"))
    parts = _synset_parts(category.synset)
    if parts is not None:
        names.append(VisualName(parts[0], "lemma"))
    unique: dict[str, VisualName] = {}
    for name in names:
        key = compact(name.words)
        if name.words and key not in unique:
            unique[key] = name
    return list(unique.values())


def visual_terms(category: Category, lexicon: SenseLexicon) -> VisualTerms:
    """Names and sense of one visual category (LVIS: its own; others: borrowed from LVIS)."""
    _, disambiguator = split_disambiguator(category.name)
    names = _own_names(category)
    if category.source == "lvis":
        return VisualTerms(
            category, tuple(names), category.synset, disambiguator, category.definition, "own"
        )
    linked, via = lexicon.link(category)
    synset = category.synset
    definition = category.definition
    if linked is not None:
        synset = synset or linked.synset
        definition = definition or linked.definition
        disambiguator = disambiguator or split_disambiguator(linked.name)[1]
        parts = _synset_parts(synset)
        if via == "lvis synonym":
            # the sense hangs on an LVIS synonym (Open Images "Man" is a synonym of LVIS
            # "person"): the name is only as good as a synonym, and the lemma is not borrowed
            names = [VisualName(n.words, "synonym") for n in names]
        else:
            borrowed = [VisualName(parts[0], "lemma")] if parts is not None else []
            if via == "lvis synset":  # the same WordNet sense: LVIS's names are names of it
                borrowed += [n for n in _own_names(linked) if n.kind != "lemma"]
                borrowed = [
                    VisualName(n.words, "lemma" if n.kind == "name" else n.kind) for n in borrowed
                ]
            known = {compact(n.words) for n in names}
            for name in borrowed:
                if compact(name.words) not in known:
                    names.append(name)
                    known.add(compact(name.words))
    elif synset:
        via = "own"
    return VisualTerms(category, tuple(names), synset, disambiguator, definition, via)


def _relation(
    name: tuple[str, ...], source: tuple[str, ...], role: str, things: set[str]
) -> str | None:
    if compact(name) == compact(source):
        return "exact"
    n, s = len(name), len(source)
    if s > n and source[:n] == name:
        if role == "object":  # the first words of an object qualify it ("drum kit")
            return "modifier"
        rest = source[n:]
        if (
            compact(source) in things
            or compact(rest) in things
            or any(compact(w) in things for w in rest)
        ):
            return "modifier"
        return "owner"
    if s > n and source[s - n :] == name:
        return "supertype"
    if n > s and name[n - s :] == source:
        return "subtype"
    if name[-1] == source[-1]:
        return "same-head"
    return None


def _words_of(*texts: str | None) -> set[str]:
    words: set[str] = set()
    for text in texts:
        if text:
            words.update(phrase_words(text))
    return words


def _fits_group(words: set[str], group: str | None) -> bool:
    kinds = GROUP_KINDS.get(group or "", ())
    return any(w.startswith(k) for w in words for k in kinds)


def _judge(
    terms: VisualTerms,
    name: VisualName,
    source: SoundSource,
    relation: str,
    label: str,
    group: str | None,
) -> tuple[bool, str]:
    """Apply the acceptance rule to one (visual name, sound source) relation."""
    shown = " ".join(source.words)
    if relation not in ("exact", "agent", "owner"):
        why = {
            "supertype": f"'{shown}' is a kind of {name.text}, not every {name.text}",
            "subtype": f"'{name.text}' ends in '{shown}': is it a kind of {shown}?",
            "modifier": f"'{name.text}' only qualifies '{shown}', a thing of its own",
            "same-head": f"'{name.text}' and '{shown}' are different kinds of {name.words[-1]}",
        }.get(relation, f"'{name.text}' resembles '{shown}'")
        return False, f"review: {why}"
    if name.kind == "synonym":
        return False, f"review: matched through the synonym '{name.text}', check the sense"
    if terms.synset is None:
        return False, "review: no WordNet sense known for this category"
    kinds = GROUP_KINDS.get(group or "", ())
    sense_words = _words_of(terms.disambiguator, terms.definition)
    fits = _fits_group(sense_words, group)
    if terms.disambiguator and kinds and not fits:
        return False, (
            f"review: sense '{terms.disambiguator}' does not fit the VGGSound group '{group}'"
        )
    parts = _synset_parts(terms.synset)
    if parts is not None and compact(parts[0]) == compact(name.words) and parts[1] != 1:
        # a later WordNet sense of the word: only the category's own name with a
        # disambiguator that fits the sound's group confirms it (chicken_(animal))
        if not (name.kind == "name" and terms.disambiguator and kinds and fits):
            return False, (
                f"review: {terms.synset} is not the dominant sense of '{' '.join(parts[0])}'"
            )
    if source.role == "object" and source.preposition is None:
        if not fits:
            return False, (
                f"review: '{shown}' is what '{source.verb}' acts on; the definition does not "
                f"make it a {group or 'known'}-group sound source"
            )
    where = {
        "subject": f"the subject of '{label}'",
        "whole": f"what '{label}' names",
        "object": f"the object of '{source.verb}'",
    }[source.role]
    if relation == "owner":
        return True, f"auto: '{label}' comes from the {name.text} ({where}); {terms.synset}"
    if relation == "agent":
        return True, f"auto: the {name.text} does what '{label}' says; {terms.synset}"
    return True, f"auto: {name.text} is {where}; {terms.synset}"


@dataclass
class _Hit:
    relation: str
    name: VisualName
    source: SoundSource | None
    score: float
    accepted: bool = False
    note: str = ""


def _score(a: str, b: str) -> float:
    return round(float(fuzz.ratio(a, b)), 1)


def match_categories(
    visual: Iterable[Category],
    audio: Iterable[Category],
    *,
    groups: Mapping[str, str] | None = None,
    lexicon: SenseLexicon | None = None,
    config: MatchConfig | None = None,
) -> list[Candidate]:
    """Candidate pairs between visual categories and VGGSound classes, with the rule's verdict.

    Args:
        visual: visual categories (LVIS, COCO, Open Images; any mix).
        audio: VGGSound classes (``name`` is the label).
        groups: VGGSound label -> group (``animals``...); labels without a group are judged
            without it (a disambiguated or object match then stays pending). Defaults to the
            shipped grouping.
        lexicon: LVIS sense dictionary; defaults to the shipped LVIS v1 categories.
        config: candidate generation settings.

    Returns:
        one candidate per (visual category, label) pair that is related at all, sorted by
        source, visual name and label. Many-to-many: a category may take several labels and a
        label several categories.
    """
    from avs_synth.matching.vocabulary import shipped_lvis_categories, shipped_vggsound_groups

    config = config or MatchConfig()
    visual = list(visual)
    audio = list(audio)
    if groups is None:
        groups = shipped_vggsound_groups()
    if lexicon is None:
        lexicon = SenseLexicon(lvis=shipped_lvis_categories())
    terms = [visual_terms(c, lexicon) for c in visual]
    things = set(lexicon.things)
    for t in terms:
        things.update(compact(n.words) for n in t.names)

    # index visual names by compact phrase and by head word
    by_phrase: dict[str, list[tuple[int, VisualName]]] = defaultdict(list)
    by_head: dict[str, list[tuple[int, VisualName]]] = defaultdict(list)
    all_names: list[tuple[int, VisualName]] = []
    for index, t in enumerate(terms):
        for name in t.names:
            by_phrase[compact(name.words)].append((index, name))
            by_head[name.words[-1]].append((index, name))
            all_names.append((index, name))

    parsed: list[SoundLabel] = [parse_sound_label(a.name) for a in audio]
    hits: dict[tuple[int, str], list[_Hit]] = defaultdict(list)

    for sound in parsed:
        group = groups.get(sound.label)
        for source in sound.sources:
            words = source.words
            related: list[tuple[int, VisualName]] = []
            for cut in range(1, len(words) + 1):  # prefixes (exact, owner, modifier)
                related.extend(by_phrase.get(compact(words[:cut]), ()))
            for cut in range(1, len(words)):  # proper suffixes (supertype)
                related.extend(by_phrase.get(compact(words[cut:]), ()))
            related.extend(by_head.get(words[-1], ()))  # subtype, same-head
            for index, name in dict.fromkeys(related):
                relation = _relation(name.words, words, source.role, things)
                if relation is None:
                    continue
                accepted, note = _judge(terms[index], name, source, relation, sound.label, group)
                hits[(index, sound.label)].append(
                    _Hit(relation, name, source, _score(name.text, source.text), accepted, note)
                )
        for source in sound.sources:  # "lawn mowing" is done by a lawn mower
            if source.role != "subject" or not sound.actions or not is_gerund(sound.actions[0]):
                continue
            for agent in agent_nouns(sound.actions[0]):
                doer = SoundSource(words=(*source.words, agent), role="subject")
                for index, name in by_phrase.get(compact(doer.words), ()):
                    accepted, note = _judge(terms[index], name, doer, "agent", sound.label, group)
                    hits[(index, sound.label)].append(
                        _Hit("agent", name, doer, _score(name.text, source.text), accepted, note)
                    )
        for stem in sound.verb_stems:
            for index, name in by_phrase.get(compact(stem), ()):
                note = f"review: '{name.text}' is the stem of a verb in '{sound.label}'"
                hits[(index, sound.label)].append(
                    _Hit("stem", name, None, _score(name.text, sound.label), False, note)
                )

    _add_fuzzy(parsed, all_names, hits, config)

    candidates = []
    for (index, label), found in hits.items():
        best = min(
            found,
            key=lambda h: (not h.accepted, _PRECEDENCE.index(h.relation), -h.score),
        )
        candidates.append(
            Candidate(
                visual=terms[index].category,
                vggsound_label=label,
                score=best.score,
                method=f"{best.relation}:{best.name.kind}",
                accepted=best.accepted,
                note=best.note,
            )
        )
    candidates.sort(
        key=lambda c: (
            c.visual.source,
            c.visual.name.casefold(),
            c.visual.category_id,
            c.vggsound_label,
        )
    )
    logger.info(
        "%d candidates (%d accepted by the rule) between %d visual categories and %d labels",
        len(candidates),
        sum(c.accepted for c in candidates),
        len(visual),
        len(audio),
    )
    return candidates


def _add_fuzzy(
    parsed: list[SoundLabel],
    all_names: list[tuple[int, VisualName]],
    hits: dict[tuple[int, str], list[_Hit]],
    config: MatchConfig,
) -> None:
    sources = [(sound, s) for sound in parsed for s in sound.sources]
    if not sources or not all_names:
        return
    source_texts = [s.text for _, s in sources]
    name_texts = [n.text for _, n in all_names]
    scores = process.cdist(
        source_texts,
        name_texts,
        scorer=fuzz.ratio,
        score_cutoff=config.fuzzy_threshold,
        dtype=np.float32,
        workers=1,
    )
    for i, j in zip(*np.nonzero(scores), strict=True):
        sound, source = sources[i]
        index, name = all_names[j]
        if min(len(source_texts[i]), len(name_texts[j])) < config.fuzzy_min_length:
            continue
        key = (index, sound.label)
        if any(h.source == source and h.name == name for h in hits.get(key, ())):
            continue
        note = f"review: '{name.text}' is spelled like '{source.text}'"
        hits[key].append(_Hit("fuzzy", name, source, round(float(scores[i, j]), 1), False, note))
