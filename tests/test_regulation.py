"""A regulation's name, meetings, dates, issuer and place, read from its own text (corpus/formats/regulation.py):
on small texts written here, and on the real regulations in ../shared (skipped when that folder is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus.formats import document_date, extract
from corpus.formats.measure_regulations import RAW, measure, read_text
from corpus.formats.regulation import cited_date, find_regulation_metadata, parse_events
from corpus.versions import version_status

COVERED = """广东省人大常委会文件

附件1

江门市人民代表大会常务委员会
公  告
（第 12 号）
《江门市文明行为促进条例》已由江门市第十五届人民代表大会常务委员会第四十一次会议于二〇二一年二月八日通过，
经广东省第十三届人民代表大会常务委员会第三十次会议于二〇二一年三月十八日批准，现予公布，自公布之日起施行。
江门市人民代表大会常务委员会
二〇二一年三月二十五日

江门市文明行为促进条例

（二〇二一年二月八日江门市第十五届人民代表大会常务委员会第四十一次会议通过　二〇二一年三月十八日广东省
第十三届人民代表大会常务委员会第三十次会议批准）

目    录

第一章　总则

第一条　为了引导和促进文明行为，制定本条例。

第三十条　本条例自公布之日起施行。
"""


def test_a_cover_page_is_passed_over_and_chinese_numeral_dates_are_read() -> None:
    meta = find_regulation_metadata(COVERED)
    assert meta["title"] == "江门市文明行为促进条例"
    assert meta["adopted_date"] == "2021-02-08" and meta["approved_date"] == "2021-03-18"
    assert meta["adopted_by"] == "江门市第十五届人民代表大会常务委员会第四十一次会议"
    assert meta["approved_by"] == "广东省第十三届人民代表大会常务委员会第三十次会议"
    assert meta["published_date"] == "2021-03-25" and meta["doc_number"] == "公告第12号"
    assert meta["effective_date"] == "2021-03-25"  # 自公布之日起施行: the 公布 date
    assert meta["issuer"] == "江门市人民代表大会常务委员会"
    assert (meta["place"], meta["province"], meta["version"]) == ("江门市", "广东省", "2021")
    assert cited_date(meta) == ("2021-03-25", "公布日期 2021-03-25")


def test_from_publication_without_a_publication_date_gives_no_date() -> None:
    text = COVERED[COVERED.index("江门市文明行为促进条例\n"):]
    meta = find_regulation_metadata(text)
    assert "published_date" not in meta and "effective_date" not in meta  # nothing made up
    assert cited_date(meta) == ("2021-03-18", "批准日期 2021-03-18")


def test_revisions_define_the_version() -> None:
    note = ("（2013年12月26日珠海市第八届人民代表大会常务委员会第十六次会议通过　根据2019年1月19日珠海市第九届人民代表"
            "大会常务委员会第十九次会议通过的《珠海市人民代表大会常务委员会关于修改〈珠海经济特区前山河流域管理条例〉等两项"
            "地方性法规的决定》修正　根据2020年3月31日珠海市第九届人民代表大会常务委员会第二十八次会议通过的《珠海市人民"
            "代表大会常务委员会关于修改〈珠海经济特区生态文明建设促进条例〉的决定》修正）")
    events = parse_events(note.replace("　", ""))
    assert [(e.kind, e.date) for e in events] == [("adopted", "2013-12-26"), ("revised", "2019-01-19"),
                                                 ("revised", "2020-03-31")]
    meta = find_regulation_metadata(f"珠海经济特区生态文明建设促进条例\n\n{note}\n\n第一章　总则\n\n第一条　本条例。\n")
    assert meta["revised_date"] == "2020-03-31" and meta["revisions"] == "2019-01-19 修正；2020-03-31 修正"
    assert (meta["place"], meta["province"], meta["version"]) == ("珠海市", "广东省", "2020")
    assert cited_date(meta) == ("2020-03-31", "修改日期 2020-03-31")


def test_a_notice_is_no_regulation() -> None:
    notice = ("江门市人民政府关于印发某某办法的通知\n\n江府〔2024〕12号\n\n现将《江门市某某管理办法》印发给你们，请认真贯彻执行。\n\n"
              "本办法自2024年3月1日起施行。\n\n江门市人民政府\n\n2024年1月15日\n")
    assert find_regulation_metadata(notice) == {}
    assert extract(notice.encode("utf-8"), "notice.txt").metadata.get("doc_type") is None


# --- the real regulations (../shared/corpora/regulations/raw) ---------------------------------------------


def real(name: str) -> tuple[str, dict[str, str]]:
    if not RAW.is_dir():
        pytest.skip(f"the regulations corpus is not at {RAW} (set POLICYQA_REGULATIONS_DIR)")
    how, text, extracted = read_text(RAW / name)
    if how == "unread":
        pytest.skip(f"no reader for {name} here (a .doc needs the .doc reader, antiword or catdoc)")
    return how, extracted or find_regulation_metadata(text)


def test_jiangmen() -> None:
    _, meta = real("广东省__2021_江门市文明行为促进条例.doc")
    assert meta["title"] == "江门市文明行为促进条例"
    # as the file says: （2021年2月8日…第四十一次会议通过 2021年3月18日…第三十次会议批准）
    assert meta["adopted_date"] == "2021-02-08" and meta["approved_date"] == "2021-03-18"
    assert meta["effective_date"] == "2021-05-01"
    assert (meta["place"], meta["province"]) == ("江门市", "广东省")
    assert meta["issuer"] == "江门市人民代表大会常务委员会"
    assert document_date(meta) == ("2021-03-18", "批准日期 2021-03-18")


def test_a_docx_with_a_cover_line_and_foreign_properties() -> None:
    how, meta = real("福建省__2018_福建省生态文明建设促进条例.docx")  # opens with 附件2
    assert how == "extract"
    assert meta["title"] == "福建省生态文明建设促进条例" and meta["doc_type"] == "regulation"
    assert meta["adopted_date"] == "2018-09-30" and "approved_date" not in meta  # the province's own
    assert (meta["place"], meta["province"]) == ("福建省", "福建省")


def test_covers_of_filing_report_and_announcement() -> None:
    _, meta = real("江苏省__2019_泰州市文明行为条例.doc")  # 备案报告, 公告 第6号, 批准的通知, then the regulation
    assert meta["title"] == "泰州市文明行为条例"
    assert (meta["adopted_date"], meta["approved_date"]) == ("2019-08-13", "2019-09-27")
    assert meta["published_date"] == "2019-10-10" and meta["doc_number"] == "公告第6号"
    assert meta["effective_date"] == "2020-01-01"


def test_in_force_from_publication() -> None:
    _, baicheng = real("吉林省__2020_白城市文明行为促进条例.docx")  # …2020年3月26日…公告第15号公布，自公布之日起施行
    assert baicheng["published_date"] == baicheng["effective_date"] == "2020-03-26"
    _, yanbian = real("吉林省__2021_延边朝鲜族自治州文明行为促进条例.docx")  # 自公布之日起施行, no 公布 date
    assert "effective_date" not in yanbian and "published_date" not in yanbian
    assert yanbian["place"] == "延边朝鲜族自治州" and yanbian["province"] == "吉林省"


@pytest.mark.parametrize("name", ["广东省__2013_珠海经济特区生态文明建设促进条例.docx"])
def test_no_file_property_is_a_title(name: str) -> None:
    if not RAW.is_dir():
        pytest.skip(f"the regulations corpus is not at {RAW}")
    ex = extract((RAW / name).read_bytes(), name)
    assert ex.metadata["title"] == "珠海经济特区生态文明建设促进条例"


def test_zhuhai_versions_newest_current() -> None:
    names = ["广东省__2013_珠海经济特区生态文明建设促进条例.docx", "广东省__2019_珠海经济特区生态文明建设促进条例.doc",
             "广东省__2020_珠海经济特区生态文明建设促进条例.doc"]
    rows = []
    for n in names:
        _, meta = real(n)
        rows.append(_Row(n, meta["title"], document_date(meta)[0] or "", meta))
    status = version_status(rows)
    assert len({status[n].group for n in names}) == 1
    assert [status[n].version for n in names] == ["2013", "2019", "2020"]
    assert [status[n].current for n in names] == [False, False, True]
    assert status[names[0]].superseded_by == status[names[1]].superseded_by == names[2]


class _Row:
    def __init__(self, doc_id: str, title: str, date: str, extra: dict[str, str]) -> None:
        self.doc_id, self.title, self.date, self.extra = doc_id, title, date, extra


def test_the_whole_corpus() -> None:
    if not RAW.is_dir():
        pytest.skip(f"the regulations corpus is not at {RAW}")
    r = measure(RAW)
    if r["text_from"].get("unread"):  # type: ignore[attr-defined]
        pytest.skip("some .doc files cannot be read here")
    assert r["files"] == 249
    assert int(r["titles_equal"]) >= 245, r["title_misses"]  # type: ignore[call-overload]
    assert r["dates_not_in_text"] == []  # no date that the text does not state
    assert int(r["places_opening_the_name"]) >= 245, r["place_misses"]  # type: ignore[call-overload]
    groups = r["version_groups"]
    assert isinstance(groups, dict)
    assert {"珠海市|珠海经济特区生态文明建设促进条例", "厦门市|厦门经济特区生态文明建设条例",
            "贵阳市|贵阳市建设生态文明城市条例"} <= set(groups)


def test_measure_names_the_truth_from_the_file_name() -> None:
    from corpus.formats.measure_regulations import truth

    assert truth(Path("广东省__2021_江门市文明行为促进条例.doc")) == ("广东省", "2021", "江门市文明行为促进条例")
