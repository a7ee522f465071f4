"""When the service answers and when it says "not found": the thresholds, per model.

``qa_service.answer.confidence`` weighs two kinds of evidence that the archive states the
asked-for fact: how far the best article stands out from the next ones in dense similarity
(``lead``, counted only when the best passage stands ``margin`` above the question's
background similarity), and how much of the question the answer's article holds
(``support``, lexical). Cosine similarities have each model's own scale, so the thresholds
belong to the model the index was built with (the lexical one too: it is chosen together
with the others).

Each row's thresholds are chosen by ``python -m eval calibrate`` (the middle of the best range
on one set, reported on the others; BENCHMARKS.md, issue 13). ``meaning_scale`` belongs here
for the same reason: how much a candidate sentence's similarity to the question counts
(``qa_service.answer.Weights.meaning``, set for the default model) must be read in the
model's own scale. embeddinggemma-300m's similarities among one question's candidate
sentences spread about six times wider than multilingual-e5-small's (median standard
deviation 0.145 against 0.023), so at the default weight its meaning drowned the words.

An index built with a model that has no row here uses the default model's thresholds, and
the service logs that it is uncalibrated.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache

log = logging.getLogger(__name__)

DEFAULT_MODEL = "multilingual-e5-small"


@dataclass(frozen=True)
class Calibration:
    min_lead: float  # the best article's dense lead over the next nine (chosen on crud_qa_dev)
    min_margin: float  # the best passage above the background (chosen on the seed pages)
    min_support: float  # share of the question's words in the answer's article (crud_qa_dev)
    # The same share for an English question, its words read through the dictionary
    # (qa_service.glossary; chosen on the seed pages).
    min_english_support: float
    # Multiplies Weights.meaning: sentence similarity in this model's scale (crud_qa_dev).
    meaning_scale: float = 1.0


CALIBRATIONS: dict[str, Calibration] = {
    # min_lead and min_support on crud_qa_dev (its CI part), min_margin and
    # min_english_support on the seed pages; each chosen again in round 6, ties broken in
    # the middle in value (BENCHMARKS.md).
    "multilingual-e5-small": Calibration(
        min_lead=0.0163, min_margin=0.045, min_support=0.6092, min_english_support=0.3723
    ),
    # The same: min_lead and min_support on crud_qa_dev's CI part (1,576 articles), min_margin
    # and min_english_support on the seed pages; meaning_scale on the CI part (0-1.0 tried;
    # chosen again after the subject penalty and Weights.near_english: BENCHMARKS.md).
    "embeddinggemma-300m": Calibration(
        min_lead=0.1197,
        min_margin=0.2508,
        min_support=0.7549,
        min_english_support=0.692,
        meaning_scale=0.2,
    ),
}

# The fields `eval calibrate` chooses.
THRESHOLDS = ("min_lead", "min_margin", "min_support", "min_english_support")


@cache
def for_model(name: str) -> Calibration:
    """The thresholds for an index built with this model (its manifest's ``model_name``)."""
    found = CALIBRATIONS.get(name)
    if found is None:
        log.warning(
            "model %r has no calibrated answer thresholds; using %s's "
            "(python -m eval calibrate chooses them)",
            name,
            DEFAULT_MODEL,
        )
        return CALIBRATIONS[DEFAULT_MODEL]
    return found
