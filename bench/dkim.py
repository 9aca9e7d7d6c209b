"""DKIM micro-benchmark: what one signature costs, part by part. A benchmark, not a test.

    .venv/bin/python bench/dkim.py                # 5,000 messages, prints the table
    .venv/bin/python bench/dkim.py --record       # … and writes it to docs/benchmarks.md

In one process, on ``--messages`` edition-like messages of ~13 KB (the size of
bench/newsletter.py's English edition: the shared head of an edition, then each recipient's
own Date, To, Message-ID and List-Unsubscribe, and a body that ends with the recipient's
unsubscribe link, as ``masthead.newsletters.rendering`` builds them), it times, in µs per
message (best of ``--rounds``): the body hash (``dkim.body_hash``), the bare signature of a
SHA-256 digest with a fresh Ed25519 key (libsodium where PyNaCl is installed, as the sender)
and a fresh RSA-2048 key (OpenSSL), and the whole ``PreparedSigner.signature`` of the sender
with each key. Issue 12's goal for DKIM is ≤ 20 % of the sender's throughput: against
bench/newsletter.py's unsigned CPU per message, these are the parts no signer can skip.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "masthead.settings")

SECTION = "## DKIM: what one signature costs"

HEAD = (
    b"From: Lantern <news@example.org>\r\nSubject: This week at the Lantern\r\n"
    b"Reply-To: letters@example.org\r\nList-Id: Weekly <weekly.news.example.org>\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"=b1\"\r\n\r\n"
)
PARAGRAPH = b"The river ferry stopped early this year as the ice came in from the north.\r\n"


def messages(count: int) -> list[bytes]:
    body = PARAGRAPH * 172  # ~13 KB with the headers, as the English edition
    return [
        b"Date: Wed, 02 Dec 2026 01:00:00 +0000\r\nTo: reader%d@example.org\r\n"
        b"Message-ID: <%d.edition@news.example.org>\r\n"
        b"List-Unsubscribe: <https://news.example.org/u/%d/k3y>, <mailto:u@example.org>\r\n"
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" % (i, i, i)
        + HEAD + body + b"Unsubscribe: https://news.example.org/u/%d/k3y\r\n" % i
        for i in range(count)
    ]


def per_message(func, items, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for item in items:
            func(item)
        best = min(best, time.perf_counter() - started)
    return best / len(items) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--record", action="store_true",
                        help=f"write the table to docs/benchmarks.md ({SECTION!r})")
    options = parser.parse_args()

    import django

    django.setup()
    from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
    from pages import machine, record, sharing

    from masthead.newsletters import dkim

    load = os.getloadavg()[0]
    items = messages(options.messages)
    size = sum(map(len, items)) / len(items) / 1024
    ed = dkim.Signer(ed25519.Ed25519PrivateKey.generate(), b"ed", b"example.org")
    rs = dkim.Signer(rsa.generate_private_key(public_exponent=65537, key_size=2048),
                     b"rsa", b"example.org")
    digest = hashlib.sha256(b"the signed header fields").digest()
    ed_edition, rsa_edition = ed.for_head(HEAD), rs.for_head(HEAD)
    rows = [
        ("body hash (SHA-256 of the body, `dkim.body_hash`)",
         per_message(lambda m: dkim.body_hash(m, m.find(b"\r\n\r\n") + 4), items,
                     options.rounds)),
        (f"Ed25519 signature of a digest ({ed.backend})",
         per_message(lambda m: ed._sign(digest), items, options.rounds)),
        (f"RSA-2048 signature of a digest ({rs.backend})",
         per_message(lambda m: rs._sign(digest), items[: max(1, len(items) // 5)],
                     options.rounds)),
        ("whole signature, Ed25519 (`PreparedSigner.signature`)",
         per_message(ed_edition.signature, items, options.rounds)),
        ("whole signature, RSA-2048 (`PreparedSigner.signature`)",
         per_message(rsa_edition.signature, items[: max(1, len(items) // 5)],
                     options.rounds)),
    ]
    lines = ["| what, per message | µs |", "| --- | ---: |"]
    lines += [f"| {label} | {value:.1f} |" for label, value in rows]
    print(f"{options.messages:,} messages of {size:.1f} KB, best of {options.rounds} rounds")
    print("\n".join(lines))
    if options.record:
        command = "python bench/dkim.py " + " ".join(sys.argv[1:])
        record("\n".join([
            SECTION,
            "",
            "Issue 12, item 5: the parts of one DKIM signature, for the reading in "
            "\"Newsletter sending\" above (the sender's whole cost is measured there, by "
            "`bench/newsletter.py --dkim`).",
            "",
            f"Command: `{command.strip()}` (source: `bench/dkim.py`). Measured "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC. Machine: {machine()}, {sharing(load)}.",
            "",
            f"{options.messages:,} edition-like messages of {size:.1f} KB (each with its "
            "recipient's own header fields and unsubscribe link), in one process, µs per "
            f"message, best of {options.rounds} rounds:",
            "",
            *lines,
            "",
        ]), ROOT / "docs" / "benchmarks.md", SECTION)
        print("Recorded in docs/benchmarks.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
