"""A list question's short answer: the enumeration around the reader's span (real jieba segmentation)."""

from __future__ import annotations

import pytest

from index.segmentation import Segmenter
from service.answering.enumeration import whole_enumeration

SEG = Segmenter()


def widen(text: str, span: str) -> str | None:
    a = text.index(span)
    found = whole_enumeration(text, a, a + len(span), SEG.word_spans, SEG.stopwords)
    return text[found[0]:found[1]] if found else None


@pytest.mark.parametrize(("text", "span", "whole"), [
    # the reader's span is the first item: its start is kept, the list runs to its clause's end
    ("今年3月，陈岸明率队深入蓬江区、江海区、新会区镇（街道）村（社区），就深化基层党建开展专题调研。", "蓬江区",
     "蓬江区、江海区、新会区"),
    # 等 closes the list; the words before the first item are not part of it
    ("压实行业管理责任，推动成立交通运输、物业服务、外卖送餐等行业党委。", "外卖送餐等行业党委", "交通运输、物业服务、外卖送餐"),
    ("在疫情防控、下沙水上人家征迁、儿童公园建设、“两馆一中心”等重大项目中组建临时党支部。", "“两馆一中心",
     "疫情防控、下沙水上人家征迁、儿童公园建设、“两馆一中心”"),
    # a first item far longer than the others holds the words before the list
    ("持续巩固提升建设成果,在全区农村社区总结推广党员责任岗、积分管理、议事协商等“英南党建经验”。",
     "在全区农村社区总结推广党员责任岗", "党员责任岗、积分管理、议事协商"),
    # an item that ends in a closing quote still touches the 、 after it
    ("通过筑牢“红色堡垒”、建强“红色队伍”、打造“红色平台”，以党建引领“红色物业”融入社会治理。", "筑牢“红色堡垒",
     "筑牢“红色堡垒”、建强“红色队伍”、打造“红色平台”"),
    # a span just inside its marks is the item with its marks
    ("主要著作有《朱学论集》、《中国和西方对仁的解说》、《西方对儒学的研究》。", "朱学论集",
     "《朱学论集》、《中国和西方对仁的解说》、《西方对儒学的研究》"),
    ("在疫情防控、下沙水上人家征迁、儿童公园建设、“两馆一中心”等重大项目中组建临时党支部。", "两馆一中心",
     "疫情防控、下沙水上人家征迁、儿童公园建设、“两馆一中心”"),
    # inside a quotation the list is the quotation's
    ("明确9种“不予或免于追究责任的情形”、3种“从轻、减轻处理的情形”、8种“不予容错的情形”。", "从轻、减轻处理的情形",
     "从轻、减轻处理的情形"),
])
def test_the_whole_list_around_the_span(text: str, span: str, whole: str) -> None:
    assert widen(text, span) == whole


@pytest.mark.parametrize(("text", "span"), [
    ("推动“多网合一”构建综合网格，将各类网格统一整合成“一张网”。", "综合网格"),  # no 、 in its clause
    ("主要提升去往广州、湛江、成都等方向的运力运能，满足旅客出行需求。", "运力运能"),  # a list nearby, not touched
])
def test_no_enumeration_no_widening(text: str, span: str) -> None:
    assert widen(text, span) is None
