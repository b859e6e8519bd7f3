"""Guide loader, Markdown -> Telegram HTML, and check_content (fixtures and the real content)."""

from __future__ import annotations

import re
import shutil
from datetime import date
from pathlib import Path

import pytest

from bot.domain.guides import (
    LANGS,
    MAX_STEP_CHARS,
    check_content,
    load_guides,
    markdown_to_html,
    url_problem,
)

FIXTURE = Path(__file__).parent / "data" / "guides_fixture"
REAL_CONTENT = Path(__file__).resolve().parents[1] / "content"
# The guides the product promises (issue 14: the first eleven and fourteen more); every guide
# file found in any language must also exist in every language.
REQUIRED_GUIDE_IDS = {
    "assist-register", "pay-socso", "pay-eis", "domestic-coverage", "domestic-register",
    "domestic-pay", "payment-deadlines", "eis-not-eligible", "contact-perkeso", "lindung-24jam",
    "contribution-rates", "who-is-covered", "register-employer", "new-employee",
    "employee-leaves", "close-business", "late-payment", "correct-contribution",
    "payment-methods", "eis-benefits", "socso-benefits", "accident-claims", "self-employed",
    "foreign-workers", "wages-definition",
}  # fmt: skip


@pytest.fixture
def content(tmp_path: Path) -> Path:
    """A writable copy of the fixture content (so a test can break one file)."""
    dst = tmp_path / "content"
    shutil.copytree(FIXTURE, dst)
    return dst


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"fixture changed: {old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


# ----------------------------------------------------------------- loader


def test_load_fixture_guides() -> None:
    lib = load_guides(FIXTURE)
    assert lib.ids() == ("pay-eis", "pay-socso")
    assert len(lib) == 6
    g = lib.get("pay-socso", "ms")
    assert g is not None and g.lang == "ms" and g.id == "pay-socso"
    assert g.title == "Bayar caruman PERKESO bulanan dengan fail teks"
    assert g.topic == "employers"
    assert g.reviewed == date(2026, 11, 25)
    assert g.related == ("pay-eis",)
    assert "fail teks" in g.keywords
    assert [s.title for s in g.steps] == [
        "Sediakan fail teks",
        'Buka "SOCSO - Contribution"',
        "Bayar",
    ]
    assert g.links[0].url == "https://assist.perkeso.gov.my/employer/login"
    assert g.links[0].step == 2
    assert g.sources[0].label == "PERKESO: caruman"


def test_get_falls_back_to_english_and_unknown_is_none(content: Path) -> None:
    (content / "zh" / "guides" / "pay-eis.md").unlink()
    lib = load_guides(content)
    assert lib.get("pay-eis", "zh").lang == "en"
    assert lib.get("pay-eis", "xx").lang == "en"
    assert lib.get("no-such-guide", "en") is None


def test_by_topic_groups_by_topic_in_the_language() -> None:
    groups = load_guides(FIXTURE).by_topic("zh")
    assert list(groups) == ["employers"]
    assert {g.id for g in groups["employers"]} == {"pay-socso", "pay-eis"}
    assert all(g.lang == "zh" for g in groups["employers"])


def test_step_html_converts_markdown_and_escapes() -> None:
    g = load_guides(FIXTURE).get("pay-socso", "en")
    assert g.steps[0].body_html == (
        "Export the <b>SOCSO</b> text file from your payroll software (<code>.txt</code>)."
    )
    assert g.steps[1].body_html == (
        '• Log in to ASSIST\n• Under "My Sites" choose "SOCSO - Contribution"'
    )
    assert "SOCSO &amp; EIS" in g.steps[2].body_html
    assert g.steps[2].html.startswith("<b>Pay</b>\n")


def test_broken_file_is_skipped_by_loader(content: Path) -> None:
    edit(content / "en" / "guides" / "pay-eis.md", 'title = "Pay monthly EIS"', 'title = "Pay')
    lib = load_guides(content)
    assert lib.get("pay-eis", "en") is None  # no English version to fall back to
    assert lib.get("pay-eis", "ms").lang == "ms"
    assert lib.get("pay-socso", "en") is not None


# ----------------------------------------------------------------- markdown


def test_markdown_escapes_html_and_ampersands() -> None:
    out = markdown_to_html('Type <script>alert("x")</script> & press **Save & go**')
    assert "<script>" not in out
    assert '&lt;script&gt;alert("x")&lt;/script&gt;' in out
    assert "&amp; press <b>Save &amp; go</b>" in out


def test_markdown_code_is_escaped_and_not_bolded() -> None:
    out = markdown_to_html("Run `a<b && **c**` then **done**")
    assert out == "Run <code>a&lt;b &amp;&amp; **c**</code> then <b>done</b>"


def test_markdown_bullets_and_blank_lines() -> None:
    out = markdown_to_html("Intro\n\n\n\n- one\n- **two**\n\nEnd\n")
    assert out == "Intro\n\n• one\n• <b>two</b>\n\nEnd"


def test_markdown_leaves_no_raw_tags() -> None:
    out = markdown_to_html("<b>raw</b> <a href='x'>link</a> 5 > 3")
    tags = re.findall(r"<[^>]+>", out)
    assert tags == []
    assert "5 &gt; 3" in out


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("https://www.perkeso.gov.my/en/x.html", True),
        ("http://assist.perkeso.gov.my/employer/login", True),
        ("ftp://perkeso.gov.my/x", False),
        ("https:///path", False),
        ("https://perkeso .gov.my", False),
        ("perkeso.gov.my", False),
        ("", False),
    ],
)
def test_url_problem(url: str, ok: bool) -> None:
    assert (url_problem(url) is None) is ok


# ----------------------------------------------------------------- check_content


def test_fixture_content_is_clean() -> None:
    assert check_content(FIXTURE) == []


def only(problems: list[str], needle: str) -> list[str]:
    return [p for p in problems if needle in p]


def test_missing_language(content: Path) -> None:
    (content / "zh" / "guides" / "pay-eis.md").unlink()
    problems = check_content(content)
    assert only(problems, "zh/guides/pay-eis.md"), problems
    assert "missing" in only(problems, "zh/guides/pay-eis.md")[0]


def test_step_count_differs(content: Path) -> None:
    path = content / "ms" / "guides" / "pay-socso.md"
    path.write_text(path.read_text(encoding="utf-8") + "\n## Tambahan\nLagi.\n", encoding="utf-8")
    hits = only(check_content(content), "ms/guides/pay-socso.md")
    assert any("4 steps" in p and "3" in p for p in hits), hits


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('summary = "Upload the EIS text file on ASSIST."\n', "", "summary"),
        ('keywords = ["eis", "sip", "employment insurance"]', "keywords = []", "keywords"),
        ("reviewed = 2026-11-25\n", "", "reviewed"),
        ('title = "Pay monthly EIS"', 'title = ""', "title"),
        ('topic = "employers"\n', "", "topic"),
        ('related = ["pay-socso"]\n', "", "related"),
    ],
)
def test_incomplete_front_matter(content: Path, old: str, new: str, field: str) -> None:
    edit(content / "en" / "guides" / "pay-eis.md", old, new)
    hits = only(check_content(content), "en/guides/pay-eis.md")
    assert any("incomplete" in p and field in p for p in hits), hits


def test_missing_sources(content: Path) -> None:
    path = content / "en" / "guides" / "pay-eis.md"
    text = path.read_text(encoding="utf-8")
    start = text.index("[[sources]]")
    end = text.index("+++", start)
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    hits = only(check_content(content), "en/guides/pay-eis.md")
    assert any("incomplete" in p and "sources" in p for p in hits), hits


def test_id_not_matching_file_name(content: Path) -> None:
    edit(content / "ms" / "guides" / "pay-eis.md", 'id = "pay-eis"', 'id = "pay-sip"')
    hits = only(check_content(content), "ms/guides/pay-eis.md")
    assert any("does not match file name" in p for p in hits), hits


def test_lang_not_matching_folder(content: Path) -> None:
    edit(content / "zh" / "guides" / "pay-eis.md", 'lang = "zh"', 'lang = "ms"')
    hits = only(check_content(content), "zh/guides/pay-eis.md")
    assert any("does not match folder" in p for p in hits), hits


def test_related_unknown(content: Path) -> None:
    edit(
        content / "en" / "guides" / "pay-socso.md", 'related = ["pay-eis"]', 'related = ["pay-epf"]'
    )
    hits = only(check_content(content), "en/guides/pay-socso.md")
    assert any("related id 'pay-epf'" in p for p in hits), hits


@pytest.mark.parametrize(
    "bad",
    ["htp://assist.perkeso.gov.my/x", "https://assist perkeso.gov.my/x", "https:///employer"],
)
def test_malformed_link_url(content: Path, bad: str) -> None:
    for lang in LANGS:  # same bad url everywhere: only the url check can fire
        edit(
            content / lang / "guides" / "pay-socso.md",
            'url = "https://assist.perkeso.gov.my/employer/login"',
            f'url = "{bad}"',
        )
    problems = check_content(content)
    for lang in LANGS:
        hits = only(problems, f"{lang}/guides/pay-socso.md")
        assert any("links #1 url" in p for p in hits), hits


def test_malformed_source_url(content: Path) -> None:
    edit(
        content / "zh" / "guides" / "pay-eis.md",
        'url = "https://www.perkeso.gov.my/en/our-services/employer-employee/contributions.html"',
        'url = "www.perkeso.gov.my/contributions"',
    )
    hits = only(check_content(content), "zh/guides/pay-eis.md")
    assert any("sources #1 url" in p for p in hits), hits


def test_link_urls_differ_across_languages(content: Path) -> None:
    edit(
        content / "zh" / "guides" / "pay-socso.md",
        'url = "https://assist.perkeso.gov.my/employer/login"',
        'url = "https://assist.perkeso.gov.my/employer/login-zh"',
    )
    hits = only(check_content(content), "zh/guides/pay-socso.md")
    assert any("link urls differ" in p for p in hits), hits


def test_step_too_long(content: Path) -> None:
    path = content / "en" / "guides" / "pay-eis.md"
    long_body = "Click the button and wait. " * 45  # about 1,200 characters
    assert len(long_body) > MAX_STEP_CHARS
    path.write_text(path.read_text(encoding="utf-8") + long_body + "\n", encoding="utf-8")
    hits = only(check_content(content), "en/guides/pay-eis.md")
    assert any("step 2 renders to" in p for p in hits), hits


def test_step_escaping_counts_towards_length(content: Path) -> None:
    # 980 raw characters, but every "&" becomes "&amp;": the rendered step is over the limit.
    path = content / "en" / "guides" / "pay-eis.md"
    body = "&" * 300 + "x" * 600
    path.write_text(path.read_text(encoding="utf-8") + body + "\n", encoding="utf-8")
    hits = only(check_content(content), "en/guides/pay-eis.md")
    assert any("renders to" in p for p in hits), hits


def test_toml_error_is_reported_not_raised(content: Path) -> None:
    edit(
        content / "ms" / "guides" / "pay-eis.md",
        'title = "Bayar caruman SIP bulanan"',
        'title = "Bayar',
    )
    problems = check_content(content)
    hits = only(problems, "ms/guides/pay-eis.md")
    assert any("TOML" in p for p in hits), problems
    # a broken file is not also reported as "missing"
    assert not any("missing (guide exists" in p for p in hits)


def test_no_front_matter_is_reported(content: Path) -> None:
    path = content / "en" / "guides" / "pay-eis.md"
    path.write_text("## Just a step\nNo front matter.\n", encoding="utf-8")
    hits = only(check_content(content), "en/guides/pay-eis.md")
    assert any("front matter" in p for p in hits), hits


# ----------------------------------------------------------------- the real content


def test_real_content_passes_check() -> None:
    assert check_content(REAL_CONTENT) == []


def test_real_content_has_every_guide_in_every_language() -> None:
    lib = load_guides(REAL_CONTENT)
    on_disk = {p.stem for lang in LANGS for p in (REAL_CONTENT / lang / "guides").glob("*.md")}
    assert set(lib.ids()) == on_disk
    assert REQUIRED_GUIDE_IDS <= on_disk
    for gid in on_disk:
        for lang in LANGS:
            g = lib.get(gid, lang)
            assert g is not None and g.lang == lang, (gid, lang)
            assert g.steps, (gid, lang)
            assert all(len(s.html) <= MAX_STEP_CHARS for s in g.steps)


# ----------------------------------------------------------------- menu order


def _set_order(content: Path, gid: str, order: str) -> None:
    for lang in LANGS:
        edit(
            content / lang / "guides" / f"{gid}.md",
            'topic = "employers"\n',
            f'topic = "employers"\norder = {order}\n',
        )


def test_order_field_sorts_the_topic_before_titles(content: Path) -> None:
    # Titles alone: "Pay monthly EIS" < "Pay monthly SOCSO by text file".
    assert [g.id for g in load_guides(content).by_topic("en")["employers"]] == [
        "pay-eis",
        "pay-socso",
    ]
    _set_order(content, "pay-socso", "5")  # a guide with an order comes before one without
    lib = load_guides(content)
    assert lib.get("pay-socso", "ms").order == 5 and lib.get("pay-eis", "ms").order is None
    for lang in LANGS:
        assert [g.id for g in lib.by_topic(lang)["employers"]] == ["pay-socso", "pay-eis"]
    _set_order(content, "pay-eis", "3")
    assert [g.id for g in load_guides(content).by_topic("zh")["employers"]] == [
        "pay-eis",
        "pay-socso",
    ]
    assert check_content(content) == []


@pytest.mark.parametrize("bad", ['"1"', "0", "true", "1.5"])
def test_order_must_be_a_positive_whole_number(content: Path, bad: str) -> None:
    _set_order(content, "pay-eis", bad)
    hits = only(check_content(content), "en/guides/pay-eis.md")
    assert any("order must be a whole number" in p for p in hits), hits
    lib = load_guides(content)  # the loader ignores it: sorted last, by title
    assert lib.get("pay-eis", "en").order is None


def test_order_differs_between_languages_or_collides(content: Path) -> None:
    _set_order(content, "pay-eis", "3")
    edit(content / "ms" / "guides" / "pay-eis.md", "order = 3", "order = 4")
    hits = only(check_content(content), "ms/guides/pay-eis.md")
    assert any("order differs from the en guide" in p for p in hits), hits
    edit(content / "ms" / "guides" / "pay-eis.md", "order = 4", "order = 3")
    _set_order(content, "pay-socso", "3")
    problems = check_content(content)
    assert any("order 3 is also used by 'pay-eis' in employers" in p for p in problems), problems


# The journey through the menu (issue 14); ids not written yet are skipped.
JOURNEY = {
    "employers": [
        "register-employer", "assist-register", "new-employee", "who-is-covered", "pay-socso",
        "pay-eis", "payment-methods", "payment-deadlines", "late-payment",
        "correct-contribution", "wages-definition", "foreign-workers", "eis-not-eligible",
        "employee-leaves", "close-business",
    ],
    "households": ["domestic-coverage", "domestic-register", "domestic-pay"],
    "workers": ["socso-benefits", "accident-claims", "eis-benefits", "lindung-24jam",
                "self-employed"],
    "general": ["contribution-rates", "contact-perkeso"],
}  # fmt: skip


def test_real_menu_follows_the_users_journey() -> None:
    lib = load_guides(REAL_CONTENT)
    for lang in LANGS:
        groups = lib.by_topic(lang)
        assert list(groups) == [t for t in JOURNEY if t in groups], lang
        assert list(groups)[0] == "employers"
        for topic, ids in JOURNEY.items():
            got = [g.id for g in groups.get(topic, [])]
            assert got == [gid for gid in ids if gid in lib.ids()], (lang, topic, got)
    assert all(lib.get(gid, "en").order is not None for gid in lib.ids())


# ----------------------------------------------------------------- glossary (one voice)

GLOSSARY = """# Glossary

| concept | en | ms | zh | avoid |
| --- | --- | --- | --- | --- |
| address the reader | you | anda | 您 | zh: 你 |
| opting out | opt out | menarik diri | 选择退出 | ms: pilih keluar; tarik diri |
| amount | RM5 | RM5 | RM5 | zh: 令吉; ms: ringgit |
| helpline | 1-300-22-8000 | 1-300-22-8000 | 1-300-22-8000 | |
"""


def test_parse_glossary_reads_the_avoid_column() -> None:
    from bot.domain.glossary import parse_avoid_cell, parse_glossary

    avoids = parse_glossary(GLOSSARY)
    assert [(a.lang, a.variant) for a in avoids] == [
        ("zh", "你"),
        ("ms", "pilih keluar"),
        ("ms", "tarik diri"),
        ("zh", "令吉"),
        ("ms", "ringgit"),
    ]
    assert avoids[1].preferred == "menarik diri" and avoids[1].concept == "opting out"
    assert parse_avoid_cell("") == {}


def test_find_avoided_whole_words_substrings_urls_and_code() -> None:
    from bot.domain.glossary import find_avoided, parse_glossary

    avoids = parse_glossary(GLOSSARY)
    ms = [a for a in avoids if a.lang == "ms"]
    zh = [a for a in avoids if a.lang == "zh"]
    assert [a.variant for a in find_avoided("Pekerja boleh Pilih  Keluar.", ms)] == ["pilih keluar"]
    assert find_avoided("Pekerja boleh menarik diri.", ms) == []  # not "tarik diri" inside it
    assert find_avoided("Lihat https://x.my/pilih-keluar/tarik diri dan `tarik diri`.", ms) == []
    assert [a.variant for a in find_avoided("请你缴付五十令吉", zh)] == ["你", "令吉"]
    assert find_avoided("请您缴付 RM50", zh) == []


def test_glossary_flags_a_bad_variant_in_a_guide_and_a_catalog(content: Path) -> None:
    (content / "GLOSSARY.md").write_text(GLOSSARY, encoding="utf-8")
    assert check_content(content) == []  # the fixture itself is clean
    edit(content / "zh" / "guides" / "pay-eis.md", "上传就业保险", "你上传就业保险")
    (content / "ms" / "calc.po").write_text(
        'msgid "calc.optout"\nmsgstr "Pekerja tempatan boleh pilih keluar."\n\n'
        'msgid "calc.url"\nmsgstr "<a href=\\"https://x.my/tarik diri\\">PERKESO</a>"\n',
        encoding="utf-8",
    )
    problems = check_content(content)
    zh = only(problems, "zh/guides/pay-eis.md")
    assert len(zh) == 1 and "avoid '你'" in zh[0] and "'您'" in zh[0], problems
    ms = only(problems, "ms/calc.po")
    assert len(ms) == 1 and "calc.optout" in ms[0] and "'pilih keluar'" in ms[0], problems
    # A variant of another language is not flagged: 你 in a Malay guide is fine.
    assert not only(problems, "ms/guides")


def test_glossary_checks_every_plural_form(content: Path) -> None:
    (content / "GLOSSARY.md").write_text(GLOSSARY, encoding="utf-8")
    (content / "zh" / "plural.po").write_text(
        'msgid "x.people"\nmsgid_plural "x.people"\nmsgstr[0] "{count}位"\n"你的朋友"\n\n'
        'msgid "x.ok"\nmsgstr "您好"\n',
        encoding="utf-8",
    )
    zh = only(check_content(content), "zh/plural.po")
    assert len(zh) == 1 and "x.people" in zh[0] and "avoid '你'" in zh[0], zh


def test_keywords_may_keep_what_people_type(content: Path) -> None:
    (content / "GLOSSARY.md").write_text(GLOSSARY, encoding="utf-8")
    edit(content / "zh" / "guides" / "pay-eis.md", "keywords = [", 'keywords = ["你好", ')
    assert check_content(content) == []


def test_real_content_speaks_with_one_voice() -> None:
    from bot.domain.glossary import check_glossary, load_glossary

    avoids = load_glossary(REAL_CONTENT)
    assert avoids and {a.lang for a in avoids} >= {"ms", "zh"}
    assert {"你", "残疾", "令吉", "外劳", "代理公司"} <= {a.variant for a in avoids}
    assert check_glossary(REAL_CONTENT, avoids) == []


def test_link_may_point_to_the_same_sites_page_in_another_language(content: Path) -> None:
    en = "https://www.perkeso.gov.my/en/our-services/employer-employee/contributions.html"
    my = "https://www.perkeso.gov.my/my/perlindungan-keselamatan-sosial/kelayakan-majikan-dan-pekerja/caruman.html"  # noqa: E501
    for lang, url in (("en", en), ("ms", my), ("zh", my)):
        edit(
            content / lang / "guides" / "pay-socso.md",
            'url = "https://assist.perkeso.gov.my/employer/login"',
            f'url = "{url}"',
        )
    assert check_content(content) == []
    # Another site's page in one language is still a mismatch.
    edit(content / "zh" / "guides" / "pay-socso.md", my, "https://example.com/my/caruman.html")
    hits = only(check_content(content), "zh/guides/pay-socso.md")
    assert any("link urls differ" in p for p in hits), hits
