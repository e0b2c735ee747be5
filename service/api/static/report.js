// The question log's report for the operator (GET /v1/report/questions, admin token). Text from the API only
// ever becomes text nodes.
"use strict";

(() => {
  const REASONS = { no_evidence: "资料未提及", low_confidence: "证据不足", out_of_scope: "超出范围",
    no_regulation_for_place: "没有该地条例", no_such_version: "没有该版本", needs_place: "需说明地方" };

  const { el, $ } = window.policyqaDom; // dom.js

  function table(caption, head, rows) {
    const t = el("table", { class: "report-table" }, el("caption", { text: caption }),
      el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { scope: "col", text: h })))));
    const body = el("tbody");
    for (const r of rows) body.append(el("tr", {}, ...r.map((c) => el("td", { text: String(c ?? "") }))));
    if (!rows.length) body.append(el("tr", {}, el("td", { colspan: head.length, text: "（无）" })));
    t.append(body);
    return t;
  }

  const reasons = (obj) => Object.entries(obj || {}).map(([k, v]) => `${REASONS[k] || k} ${v}`).join("，");

  function render(r) {
    const out = $("report");
    out.replaceChildren(
      el("p", { class: "card", text: `最近 ${r.days} 天：问题 ${r.questions}，回答 ${r.answered}，拒答 ${r.refused}；` +
        `延迟中位数 ${r.latency_p50_ms ?? "—"} 毫秒；👍 ${r.feedback.up} 👎 ${r.feedback.down}` +
        (r.question_log ? "" : "（问题日志已关闭）") }),
      table("最常问的问题", ["次数", "问题", "拒答"], r.top_questions.map((q) => [q.count, q.question, q.refused])),
      table("拒答原因", ["原因", "次数"], r.refusals_by_reason.map((x) => [REASONS[x.reason] || x.reason, x.count])),
      table("资料缺口：按地方（应补充的文档）", ["地方", "拒答", "原因", "例子"],
        r.gaps_by_place.map((g) => [g.place, g.refused, reasons(g.reasons), g.example])),
      table("资料缺口：按话题", ["话题", "拒答", "原因", "例子"],
        r.gaps_by_topic.map((g) => [g.topic, g.refused, reasons(g.reasons), g.example])),
      table("👎 的回答", ["时间", "问题", "回答", "正确答案", "备注"],
        r.down_votes.map((d) => [d.created_at.slice(0, 19).replace("T", " "), d.resolved_question, d.answer,
          d.correct_answer, d.comment])));
    out.hidden = false;
  }

  async function load() {
    const error = $("report-error");
    error.hidden = true;
    const days = Number($("report-days").value) || 30;
    try {
      const response = await fetch(`/v1/report/questions?days=${days}`, {
        headers: { Accept: "application/json", Authorization: `Bearer ${$("report-token").value.trim()}` },
      });
      const data = await response.json();
      if (!response.ok) throw new Error(String((data.error && data.error.message) || response.status).split(" / ")[0]);
      render(data);
    } catch (err) {
      error.textContent = err instanceof TypeError ? "无法连接服务，请稍后再试" : String(err.message || err);
      error.hidden = false;
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("report-form").addEventListener("submit", (event) => { event.preventDefault(); load(); });
  });
})();
