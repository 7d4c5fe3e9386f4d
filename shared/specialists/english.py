"""English specialist: plurals, past tenses, spelling and grammar terms, by rule."""

import re

from .base import Answer

IRREGULAR_PLURALS = {
    "child": "children", "person": "people", "man": "men", "woman": "women", "mouse": "mice",
    "goose": "geese", "foot": "feet", "tooth": "teeth", "ox": "oxen", "cactus": "cacti",
    "criterion": "criteria", "phenomenon": "phenomena", "sheep": "sheep", "fish": "fish",
    "deer": "deer", "series": "series", "leaf": "leaves", "knife": "knives", "wife": "wives",
    "life": "lives", "half": "halves", "wolf": "wolves", "potato": "potatoes", "tomato": "tomatoes",
    "hero": "heroes",
}
IRREGULAR_PAST = {
    "be": "was/were", "go": "went", "have": "had", "do": "did", "say": "said", "make": "made",
    "take": "took", "see": "saw", "come": "came", "know": "knew", "get": "got", "give": "gave",
    "find": "found", "think": "thought", "tell": "told", "run": "ran", "eat": "ate", "write": "wrote",
    "swim": "swam", "sing": "sang", "buy": "bought", "bring": "brought", "teach": "taught",
    "catch": "caught", "fly": "flew", "drink": "drank", "begin": "began", "speak": "spoke",
    "break": "broke", "choose": "chose", "put": "put", "cut": "cut", "read": "read", "let": "let",
}
MISSPELLINGS = {
    "recieve": "receive", "definately": "definitely", "seperate": "separate", "occured": "occurred",
    "untill": "until", "wich": "which", "beleive": "believe", "goverment": "government",
    "tommorow": "tomorrow", "accomodate": "accommodate", "neccessary": "necessary",
}
GLOSSARY = {
    "noun": "a word that names a person, place, thing or idea, like 'teacher' or 'city'",
    "verb": "a word for an action or a state, like 'run' or 'be'",
    "adjective": "a word that describes a noun, like 'blue' or 'tall'",
    "adverb": "a word that modifies a verb, adjective or other adverb, like 'quickly'",
    "pronoun": "a word that stands in for a noun, like 'she' or 'they'",
    "preposition": "a word that shows a relation such as place or time, like 'on' or 'before'",
    "conjunction": "a word that joins words or clauses, like 'and' or 'because'",
    "synonym": "a word with the same or nearly the same meaning as another",
    "antonym": "a word with the opposite meaning of another",
    "metaphor": "a figure of speech that says one thing is another, like 'time is a thief'",
    "simile": "a comparison using 'like' or 'as', like 'as brave as a lion'",
    "syllable": "a unit of sound with one vowel sound; 'water' has two",
    "homophone": "a word that sounds like another but differs in meaning, like 'there' and 'their'",
    "alliteration": "the repetition of the first sound in nearby words, like 'Peter Piper picked'",
}
VOWELS = "aeiou"


def pluralize(noun: str) -> str:
    noun = noun.lower()
    if noun in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[noun]
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and len(noun) > 1 and noun[-2] not in VOWELS:
        return noun[:-1] + "ies"
    return noun + "s"


def past_tense(verb: str) -> str:
    verb = verb.lower()
    if verb in IRREGULAR_PAST:
        return IRREGULAR_PAST[verb]
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and len(verb) > 1 and verb[-2] not in VOWELS:
        return verb[:-1] + "ied"
    if re.fullmatch(r"[^aeiou]*[aeiou][^aeiouwxy]", verb):  # one syllable, consonant-vowel-consonant
        return verb + verb[-1] + "ed"
    return verb + "ed"


_WORD = r"[\"'‘“]?([a-z]+)[\"'’”]?"
_RULES = [
    (re.compile(rf"\bplural (?:form )?of (?:the (?:word|noun) )?(?:an? )?{_WORD}", re.I), "plural"),
    (re.compile(rf"\bpast tense of (?:the (?:word|verb) )?(?:to )?{_WORD}", re.I), "past"),
    (re.compile(rf"\b(?:how (?:do you|to) spell|is) {_WORD}(?: spelled| spelt)?", re.I), "spell"),
    (re.compile(rf"\b(?:what (?:is|are) (?:an? )?|define |definition of (?:an? )?|meaning of (?:an? )?){_WORD}", re.I), "define"),
]


class EnglishSpecialist:
    name = "english"

    def answer(self, question: str) -> Answer:
        for regex, kind in _RULES:
            for m in regex.finditer(question):
                if reply := self._apply(kind, m.group(1).lower()):
                    return Answer(self.name, *reply)
        return Answer(self.name, "I can help with plurals, past tenses, spelling and grammar terms.", 0.0)

    def _apply(self, kind: str, word: str) -> tuple[str, float] | None:
        if kind == "plural":
            return f"The plural of '{word}' is '{pluralize(word)}'.", 0.9 if word in IRREGULAR_PLURALS else 0.8
        if kind == "past":
            return f"The past tense of '{word}' is '{past_tense(word)}'.", 0.9 if word in IRREGULAR_PAST else 0.8
        if kind == "spell":
            if word in MISSPELLINGS:
                return f"'{word}' is misspelled; the correct spelling is '{MISSPELLINGS[word]}'.", 0.9
            if word in MISSPELLINGS.values():
                return f"Yes, '{word}' is spelled correctly.", 0.9
            return None
        term = word if word in GLOSSARY else word[:-1] if word.endswith("s") and word[:-1] in GLOSSARY else None
        if term is None:
            return None
        return f"{'An' if term[0] in VOWELS else 'A'} {term} is {GLOSSARY[term]}.", 0.9
