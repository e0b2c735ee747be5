"""Versions of the same regulation (corpus/versions.py): grouped by place and name, the newest current."""

from __future__ import annotations

from dataclasses import dataclass, field

from corpus.versions import version_status


@dataclass(frozen=True)
class Doc:
    doc_id: str
    title: str
    date: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def reg(doc_id: str, title: str, place: str, **dates: str) -> Doc:
    version = max(dates.values())[:4] if dates else ""
    return Doc(doc_id, title, "", {"doc_type": "regulation", "place": place, "version": version, **dates})


def test_newest_version_is_current_and_supersedes_the_others() -> None:
    docs = [
        reg("zh-2019", "珠海经济特区生态文明建设促进条例", "珠海市", adopted_date="2013-12-26", revised_date="2019-01-19"),
        reg("zh-2013", "珠海经济特区生态文明建设促进条例", "珠海市", adopted_date="2013-12-26"),
        reg("zh-2020", "珠海经济特区生态文明建设促进条例", "珠海市", adopted_date="2013-12-26", revised_date="2020-03-31"),
        reg("jm", "江门市文明行为促进条例", "江门市", adopted_date="2021-02-08", approved_date="2021-03-18"),
        reg("other-place", "珠海经济特区生态文明建设促进条例", "厦门市", adopted_date="2014-01-01"),
        Doc("news", "江门新闻", "2024-09"),
    ]
    s = version_status(docs)
    assert s["zh-2020"].current and s["zh-2020"].superseded_by is None and s["zh-2020"].version == "2020"
    assert not s["zh-2013"].current and s["zh-2013"].superseded_by == "zh-2020"
    assert not s["zh-2019"].current and s["zh-2019"].superseded_by == "zh-2020"
    assert s["zh-2013"].group == s["zh-2020"].group == "珠海市|珠海经济特区生态文明建设促进条例"
    assert s["jm"].current and s["jm"].superseded_by is None
    assert s["other-place"].current and s["other-place"].group != s["zh-2020"].group  # same name, other place
    assert s["news"].current and s["news"].group == "" and s["news"].superseded_by is None


def test_two_files_of_one_version_are_both_current() -> None:
    a = reg("a", "某市文明行为促进条例", "某市", adopted_date="2020-01-01")
    b = reg("b", "某市 文明行为促进条例", "某市", adopted_date="2020-01-01")  # spacing aside, the same name
    s = version_status([a, b])
    assert s["a"].current and s["b"].current and s["a"].group == s["b"].group
