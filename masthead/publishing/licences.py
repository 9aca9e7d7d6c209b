"""The licences a photo can be published under, and where each one's deed lives."""

from __future__ import annotations

from django.db import models


class Licence(models.TextChoices):
    ALL_RIGHTS_RESERVED = "arr", "All rights reserved"
    CC_BY_2 = "cc-by-2.0", "CC BY 2.0"
    CC_BY_4 = "cc-by-4.0", "CC BY 4.0"
    CC_BY_SA_2 = "cc-by-sa-2.0", "CC BY-SA 2.0"
    CC_BY_SA_4 = "cc-by-sa-4.0", "CC BY-SA 4.0"
    CC_BY_ND_4 = "cc-by-nd-4.0", "CC BY-ND 4.0"
    CC_BY_NC_4 = "cc-by-nc-4.0", "CC BY-NC 4.0"
    CC_BY_NC_SA_4 = "cc-by-nc-sa-4.0", "CC BY-NC-SA 4.0"
    CC0 = "cc0-1.0", "CC0 1.0"
    PUBLIC_DOMAIN = "public-domain", "Public domain"
    HANDOUT = "handout", "Handout"


DEEDS = {
    Licence.CC_BY_2: "https://creativecommons.org/licenses/by/2.0/",
    Licence.CC_BY_4: "https://creativecommons.org/licenses/by/4.0/",
    Licence.CC_BY_SA_2: "https://creativecommons.org/licenses/by-sa/2.0/",
    Licence.CC_BY_SA_4: "https://creativecommons.org/licenses/by-sa/4.0/",
    Licence.CC_BY_ND_4: "https://creativecommons.org/licenses/by-nd/4.0/",
    Licence.CC_BY_NC_4: "https://creativecommons.org/licenses/by-nc/4.0/",
    Licence.CC_BY_NC_SA_4: "https://creativecommons.org/licenses/by-nc-sa/4.0/",
    Licence.CC0: "https://creativecommons.org/publicdomain/zero/1.0/",
    Licence.PUBLIC_DOMAIN: "https://creativecommons.org/publicdomain/mark/1.0/",
}


def _normalise(text: str) -> str:
    return " ".join(str(text).strip().lower().replace("-", " ").replace("_", " ").split())


# Names accepted on import besides the codes: "CC BY 2.0", "cc-by-sa-4.0", "CC0",
# "public domain" … (case, dashes and spaces do not matter).
_ALIASES = {_normalise(label): value for value, label in Licence.choices}
_ALIASES.update({_normalise(value): value for value in Licence.values})
_ALIASES.update({"cc0": Licence.CC0, "cc zero": Licence.CC0, "all rights reserved.": "arr"})


def parse_licence(text: str) -> str:
    """The licence code for ``text`` (a code or a label, any case); ValueError if unknown."""
    key = _normalise(text)
    if key in _ALIASES:
        return _ALIASES[key]
    raise ValueError(
        f"unknown licence {text!r}; use one of: " + ", ".join(label for _, label in Licence.choices)
    )


def deed_url(code: str) -> str | None:
    return DEEDS.get(code)
