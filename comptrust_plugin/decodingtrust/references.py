"""The pinned DecodingTrust commits each scoring variant follows (constants only: nothing here runs)."""

from __future__ import annotations

from dataclasses import dataclass

DECODINGTRUST_REPOSITORY = "https://github.com/AI-secure/DecodingTrust"


@dataclass(frozen=True)
class Reference:
    """One commit of DecodingTrust's code that a scoring variant's readings mirror."""

    repository: str
    commit: str
    what: str
    base: str | None = None  # the commit a pull request's patch applies to


# `dt`: DecodingTrust's own scoring scripts (agreement classifier, substring rules, nested means, ...).
DT_COMMIT = "161ae8321ced62f45fcd9ceb412e05b47c603cd4"
# `comptrust-paper`: the compressed-trust study's scoring, DecodingTrust pull request #31.
PAPER_COMMIT = "af102c05e40382ee061f20d2e9f79d2c58b9114a"
PAPER_BASE = "e613e05"

REFERENCES = {
    "dt": Reference(DECODINGTRUST_REPOSITORY, DT_COMMIT, "DecodingTrust main"),
    "comptrust-paper": Reference(
        DECODINGTRUST_REPOSITORY, PAPER_COMMIT, "DecodingTrust PR #31 (the compressed-trust patch)", base=PAPER_BASE
    ),
}
