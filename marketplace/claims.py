"""Return claims SEBI does not allow in a listing (reference/india-market.md § 0.5): nothing may
promise guaranteed, assured, risk-free or consistent returns. Screened when a creator saves or
submits a listing and again when a reviewer approves it; the error names the phrase found.
"""

from __future__ import annotations

import re

_RETURN = r"(?:returns?|profits?|income|gains?|earnings?|payouts?)"
# Up to three words between, such as "5% monthly" or "₹10,000 weekly".
_WORDS = r"(?:[\w%₹-]+(?:[.,]\d+)*\s+){0,3}"
_PATTERNS = [
    rf"(?<!\bno\s)\bguarantee(?:d|s)?\s+{_WORDS}{_RETURN}",
    rf"\b{_RETURN}\s+(?:are\s+|is\s+)?guaranteed\b",
    rf"\bassured\s+{_WORDS}{_RETURN}",
    rf"\bconsistent(?:ly)?\s+{_WORDS}{_RETURN}",
    rf"\bfixed\s+(?:monthly\s+|weekly\s+|daily\s+)?{_RETURN}",
    r"\brisk[\s-]?free\b",
    r"\b(?:no|zero)[\s-]loss(?:es)?\b",
    r"\bsure[\s-]?shot\b",
    r"\b100\s?%\s+(?:accura\w*|success|profit\w*|win\w*)",
    r"\bnever\s+(?:loses?|lost|had\s+a\s+losing)\b",
]
_CLAIM = re.compile("|".join(f"(?:{pattern})" for pattern in _PATTERNS), re.IGNORECASE)


def return_claims(*texts: str) -> list[str]:
    """The forbidden phrases found in `texts`, as written, in order, without repeats."""
    found: list[str] = []
    for text in texts:
        for match in _CLAIM.finditer(text or ""):
            phrase = " ".join(match.group(0).split())
            if phrase.lower() not in (seen.lower() for seen in found):
                found.append(phrase)
    return found


def return_claims_message(phrases: list[str]) -> str:
    quoted = ", ".join(f"“{phrase}”" for phrase in phrases)
    return (
        f"SEBI does not allow claims of guaranteed or consistent returns: remove {quoted}. "
        "Describe the strategy and its risks; its verified track record speaks for results."
    )
