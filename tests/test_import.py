"""``masthead import-articles``: idempotent re-import, sanitising, Markdown, bad lines, the CLI."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image

from masthead.publishing.importer import MAX_LINE_BYTES, import_file
from masthead.publishing.models import ArticlePage, NewsImage, SectionPage


def make_image(path: Path, colour: str = "teal") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 40), colour).save(path, "JPEG")
    return path


def write_jsonl(path: Path, lines: list[object]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for line in lines:
            handle.write(line if isinstance(line, str) else json.dumps(line, ensure_ascii=False))
            handle.write("\n")
    return path


def article(external_id: str, **overrides) -> dict:
    data = {
        "external_id": external_id,
        "headline": f"Headline {external_id}",
        "standfirst": "A standfirst.",
        "body": "<p>First paragraph.</p><h2>A subhead</h2><blockquote><p>Quoted.</p></blockquote>",
        "body_format": "html",
        "section": "News",
        "authors": ["Ada Reporter"],
        "tags": ["council"],
        "language": "en",
        "published_at": "2026-01-05T09:30:00+00:00",
    }
    data.update(overrides)
    return data


def stored_originals() -> set[str]:
    folder = Path(settings.MEDIA_ROOT) / "original_images"
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    make_image(tmp_path / "images" / "quay.jpg")
    return tmp_path


def test_reimport_updates_by_external_id_without_duplicates(site, workdir):
    image = {"path": "images/quay.jpg", "caption": "The quay.", "credit": "Tomas Reyne",
             "licence": "CC BY 2.0"}
    lines = [
        article("imp-1", lead_image=image, tags=["council", "budget"]),
        article("imp-1-ru", language="ru", headline="Заголовок", section="Новости",
                translation_of="imp-1", lead_image=image),
    ]
    path = write_jsonl(workdir / "a.jsonl", lines)

    first = import_file(path)
    assert (first.created, first.updated, first.errors) == (2, 0, [])
    english = ArticlePage.objects.get(external_id="imp-1")
    russian = ArticlePage.objects.get(external_id="imp-1-ru")
    assert english.live and russian.live
    assert russian.translation_key == english.translation_key
    assert russian.locale.language_code == "ru"
    assert [a.name for a in english.authors] == ["Ada Reporter"]
    assert sorted(t.name for t in english.tags.all()) == ["budget", "council"]
    assert english.lead_image.credit == "Tomas Reyne"
    assert english.lead_image.licence == "cc-by-2.0"
    assert english.get_parent().title == "News"
    assert russian.get_parent().title == "Новости"
    images_before = NewsImage.objects.count()
    assert images_before == 1  # the same photo twice is one image

    lines[0] = article("imp-1", headline="Corrected headline", tags=["council"],
                       lead_image={**image, "caption": "The quay at dawn."})
    write_jsonl(path, lines)
    second = import_file(path)
    assert (second.created, second.updated, second.errors) == (0, 2, [])
    assert ArticlePage.objects.filter(external_id="imp-1").count() == 1
    assert ArticlePage.objects.count() == 2
    assert NewsImage.objects.count() == images_before
    english = ArticlePage.objects.get(external_id="imp-1")
    assert english.title == "Corrected headline"
    assert english.live_revision.as_object().title == "Corrected headline"
    assert [t.name for t in english.tags.all()] == ["council"]
    assert english.caption == "The quay at dawn."
    assert ArticlePage.objects.get(external_id="imp-1-ru").caption == "The quay."


def test_html_body_is_sanitised(site, workdir, client):
    hostile = (
        "<p onclick=\"alert('p')\">Safe words.</p>"
        "<script>alert('xss')</script>"
        "<p><a href=\"javascript:alert('js')\">bad link</a> "
        "<a href=\"https://example.org/ok\" onmouseover=\"alert('over')\">good link</a></p>"
        "<img src=x onerror=\"alert('img')\">"
        "<iframe src=\"https://evil.example/\"></iframe>"
        "<style>body{display:none}</style>"
        "<h2 style=\"color:red\">Subhead <script>alert('h')</script></h2>"
    )
    path = write_jsonl(workdir / "x.jsonl", [article("xss-1", body=hostile)])
    report = import_file(path)
    assert report.errors == [] and report.created == 1

    page = ArticlePage.objects.get(external_id="xss-1")
    stored = json.dumps(list(page.body.raw_data))
    html = client.get(page.url).content.decode()
    body = html.split('class="article-body"', 1)[1].split("</article>", 1)[0]
    for needle in ("alert(", "<script", "onclick", "onmouseover", "onerror", "javascript:",
                   "<iframe", "<style", "style=", "evil.example", "<img"):
        assert needle not in stored, needle
        assert needle not in body, needle
    assert "Safe words." in body
    assert 'href="https://example.org/ok"' in body
    assert [block.block_type for block in page.body] == ["paragraph", "paragraph", "subhead"]


def test_markdown_body_becomes_paragraphs_subheads_and_quotes(site, workdir):
    markdown = (
        "The first paragraph with **bold** and a [link](https://example.org/report).\n\n"
        "## What happens next\n\n"
        "> We will publish everything.\n\n"
        "- one\n- two\n\n"
        "<script>alert(1)</script>\n\n"
        "[trap](javascript:alert(2))"
    )
    line = article("md-1", body=markdown, body_format="markdown")
    path = write_jsonl(workdir / "m.jsonl", [line])
    assert import_file(path).errors == []
    page = ArticlePage.objects.get(external_id="md-1")
    kinds = [block.block_type for block in page.body]
    assert kinds[:3] == ["paragraph", "subhead", "quote"]
    first = str(page.body[0].value)
    assert "<b>bold</b>" in first or "<strong>bold</strong>" in first
    assert 'href="https://example.org/report"' in first
    assert page.body[1].value == "What happens next"
    assert "We will publish everything." in page.body[2].value["quote"]
    everything = json.dumps(list(page.body.raw_data))
    assert "<li>one</li>" in everything
    assert "alert(" not in everything and "javascript:" not in everything


def test_bad_lines_are_reported_with_line_numbers_and_good_lines_import(site, workdir):
    good_image = {"path": "images/quay.jpg", "caption": "c", "credit": "p", "licence": "CC0"}
    (workdir / "images" / "not-a-photo.jpg").write_text("this is not a JPEG")
    make_image(workdir / "images" / "orphan.jpg", colour="orange")
    lines = [
        article("good-1", lead_image=good_image),                                      # 1
        '{"external_id": "broken", "headline": ',                                      # 2
        article("no-headline", headline=""),                                           # 3
        article("bad-licence", lead_image={**good_image, "licence": "Do what you like"}),  # 4
        article("no-image", lead_image={"path": "images/missing.jpg", "licence": "CC0"}),  # 5
        article("bad-language", language="tlh"),                                       # 6
        article("bad-types", headline=42),                                             # 7
        article("too-long", body="<p>" + "a" * (MAX_LINE_BYTES + 10) + "</p>"),        # 8
        "",                                                                            # 9 blank
        "[1, 2, 3]",                                                                   # 10
        "[" * 100_000 + "]" * 100_000,                                                 # 11
        article("bad-date", published_at="next Tuesday"),                              # 12
        article("bad-tags", tags=[1, 2]),                                              # 13
        article("bad-format", body_format="docx"),                                     # 14
        article("corrupt-image", lead_image={"path": "images/not-a-photo.jpg"}),       # 15
        # Fails after its (new) image and (new) section were created: nothing may remain.
        article("orphan", section="Ghost section", translation_of="nobody",
                lead_image={"path": "images/orphan.jpg", "licence": "CC0"}),           # 16
        article("good-2", body="# Title\n\nText", body_format="markdown"),             # 17
    ]
    path = write_jsonl(workdir / "mixed.jsonl", lines)
    with path.open("ab") as handle:
        handle.write(b'{"external_id": "latin-1", "headline": "Caf\xe9"}\r\n')       # 18
    files_before = stored_originals()

    report = import_file(path)

    reasons = dict(report.errors)
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14, 15, 16, 18], reasons
    assert reasons[2].startswith("invalid JSON")
    assert reasons[3] == "headline is required"
    assert "unknown licence 'Do what you like'" in reasons[4]
    assert "images/missing.jpg" in reasons[5] and "does not exist" in reasons[5]
    assert "language 'tlh'" in reasons[6]
    assert reasons[7] == "headline must be a string"
    assert reasons[8] == "line is longer than 2 MB"
    assert reasons[10] == "each line must be a JSON object"
    assert "nested too deeply" in reasons[11]
    assert "published_at" in reasons[12]
    assert reasons[13] == "tags must be a list of strings"
    assert "body_format" in reasons[14]
    assert "not a readable image" in reasons[15]
    assert "translation_of 'nobody'" in reasons[16]
    assert reasons[18] == "line is not valid UTF-8"
    assert report.created == 2
    assert set(ArticlePage.objects.values_list("external_id", flat=True)) == {"good-1", "good-2"}
    # Atomic per line: the failed line 16 left no page, no section, no image row, no file.
    assert not SectionPage.objects.filter(title="Ghost section").exists()
    assert NewsImage.objects.count() == 1
    assert len(stored_originals() - files_before) == 1


def test_byte_order_mark_and_windows_line_endings_are_accepted(site, workdir):
    path = workdir / "windows.jsonl"
    lines = [json.dumps(article("win-1")), json.dumps(article("win-2"))]
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")
    report = import_file(path)
    assert (report.created, report.errors) == (2, [])


def test_command_reports_errors_and_progress_on_stderr(site, workdir):
    path = write_jsonl(workdir / "c.jsonl", [article("cmd-1"), "not json", article("cmd-2")])
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command("import_articles", str(path), stdout=out, stderr=err)
    assert excinfo.value.returncode == 1
    assert str(excinfo.value) == "2 created, 0 updated, 1 line(s) with errors"
    assert f"{path}:2: invalid JSON" in err.getvalue()
    assert "3/3" in err.getvalue()  # the tqdm bar reached the end, on stderr
    assert out.getvalue() == ""
    assert ArticlePage.objects.filter(external_id__in=["cmd-1", "cmd-2"]).count() == 2


def test_missing_file_is_a_clear_error(site, workdir):
    with pytest.raises(CommandError, match="no such file"):
        call_command("import_articles", str(workdir / "nope.jsonl"))


def test_cli_exit_status_and_streams(site, subprocess_env, workdir):
    """The real console command: errors and the bar on stderr, no traceback, status 1 / 0."""
    lines = [article("cli-1"), "{oops", article("cli-2", headline=None)]
    bad = write_jsonl(workdir / "bad.jsonl", lines)
    command = [sys.executable, "-m", "masthead.cli", "import-articles"]
    result = subprocess.run([*command, str(bad)], env=subprocess_env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert f"{bad}:2: invalid JSON" in result.stderr
    assert f"{bad}:3: headline is required" in result.stderr
    assert "1 created, 0 updated, 2 line(s) with errors" in result.stderr
    assert "3/3" in result.stderr and "3/3" not in result.stdout
    assert ArticlePage.objects.filter(external_id="cli-1").exists()

    lines = [article("cli-1", headline="Updated"), article("cli-3")]
    good = write_jsonl(workdir / "good.jsonl", lines)
    result = subprocess.run([*command, str(good), "--no-progress"], env=subprocess_env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "1 created, 1 updated, 0 line(s) with errors" in result.stdout
    assert ArticlePage.objects.get(external_id="cli-1").title == "Updated"

