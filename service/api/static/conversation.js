// policyqa web page, the conversation: earlier turns are sent with each question (`history`; the server keeps
// nothing), answered turns are listed as a thread above the question box, a follow-up's standalone question
// is shown when it differs from what was typed, and every answer can be rated 👍/👎 (with 👎 an optional
// "正确答案是…").
//
// app.js calls window.policyqaConversation.withHistory(body) before it asks and .answered(data, text, card)
// after it has drawn an answer or a refusal. Text from the API only ever becomes text nodes.
"use strict";

(() => {
  const MAX_TURNS = 10; // POLICYQA_MAX_HISTORY_TURNS' default: older turns are not sent
  const ANSWER_CHARS = 2000; // of each earlier answer sent back
  let turns = []; // {question, answer, resolved_question}: the answered turns, oldest first

  const { el, $ } = window.policyqaDom; // dom.js

  function chinesePart(message) {
    const text = String(message || "");
    const cut = text.indexOf(" / ");
    return cut > 0 ? text.slice(0, cut) : text;
  }

  function withHistory(body) {
    if (!turns.length) return body;
    renderThread(true); // the answer card is cleared for the new question: the newest turn joins the thread
    return { ...body, history: turns.slice(-MAX_TURNS) };
  }

  function renderThread(all = false) {
    const thread = $("thread");
    const list = $("thread-list");
    if (!thread || !list) return;
    // every answered turn but the newest, which is on show in the answer card below
    const earlier = all ? turns : turns.slice(0, -1);
    list.replaceChildren(...earlier.map((t, i) => el("li", { class: "thread-turn", "data-turn": i + 1 },
      el("p", { class: "thread-q" }, el("span", { class: "thread-label", text: "问" }), t.question),
      t.resolved_question && t.resolved_question !== t.question
        ? el("p", { class: "thread-resolved", text: `按此理解：${t.resolved_question}` }) : null,
      el("p", { class: "thread-a" }, el("span", { class: "thread-label", text: "答" }),
        t.short || t.answer || "（未作回答）"))));
    thread.hidden = turns.length === 0;
  }

  function resolvedNote(data, asked) {
    const resolved = typeof data.resolved_question === "string" ? data.resolved_question : "";
    if (!resolved || resolved === asked) return null;
    return el("p", { class: "resolved-question", role: "note" }, "按此理解：", el("strong", { text: resolved }));
  }

  function feedbackBar(answerId) {
    const bar = el("div", { class: "feedback", "data-answer-id": answerId });
    const up = el("button", { type: "button", class: "btn feedback-up", "aria-pressed": "false", title: "回答正确" }, "👍");
    const down = el("button", { type: "button", class: "btn feedback-down", "aria-pressed": "false", title: "回答有误" }, "👎");
    const label = el("span", { class: "feedback-label", text: "这个回答有帮助吗？" });
    const status = el("span", { class: "feedback-status", role: "status", "aria-live": "polite" });
    const fix = el("form", { class: "feedback-fix", hidden: true, novalidate: true },
      el("label", { for: `fix-${answerId}`, text: "正确答案是…（可选）" }),
      el("input", { id: `fix-${answerId}`, class: "feedback-correct", type: "text", maxlength: "2000", autocomplete: "off",
        placeholder: "正确答案是…" }),
      el("button", { type: "submit", class: "btn btn-primary feedback-send", text: "提交" }));

    async function send(rating, correct) {
      up.disabled = down.disabled = true;
      status.textContent = "正在提交…";
      try {
        const body = { answer_id: answerId, rating };
        if (correct) body.correct_answer = correct;
        const response = await fetch("/v1/feedback", {
          method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify(body),
        });
        if (!response.ok) {
          let data = null;
          try { data = await response.json(); } catch { data = null; }
          throw new Error(chinesePart(data && data.error && data.error.message) || `提交失败（HTTP ${response.status}）`);
        }
        status.textContent = rating === "up" ? "谢谢！" : correct ? "谢谢，已记下正确答案" : "谢谢，已记下";
        (rating === "up" ? up : down).setAttribute("aria-pressed", "true");
        fix.hidden = true;
      } catch (err) {
        status.textContent = err instanceof TypeError ? "无法连接服务，请稍后再试" : String(err.message || err);
        up.disabled = down.disabled = false;
      }
    }

    up.addEventListener("click", () => send("up"));
    down.addEventListener("click", () => {
      down.setAttribute("aria-pressed", "true");
      fix.hidden = false;
      fix.querySelector("input").focus();
    });
    fix.addEventListener("submit", (event) => {
      event.preventDefault();
      send("down", fix.querySelector("input").value.trim());
    });
    bar.append(label, up, down, status, fix);
    return bar;
  }

  function answered(data, asked, card) {
    const answerText = data.refused ? "" : String(data.answer || "").slice(0, ANSWER_CHARS);
    turns.push({ question: asked, answer: answerText,
      resolved_question: typeof data.resolved_question === "string" ? data.resolved_question : asked,
      short: data.refused ? "" : (data.short_answer || "") });
    // kept on the page only: the thread goes with the next question, the extra field does not
    const last = turns[turns.length - 1];
    Object.defineProperty(last, "short", { enumerable: false, value: last.short });
    if (card) {
      const note = resolvedNote(data, asked);
      if (note) card.prepend(note);
      if (data.answer_id) card.append(feedbackBar(String(data.answer_id)));
    }
    renderThread();
    const box = $("question");
    if (box) box.value = "";
  }

  function reset() {
    turns = [];
    renderThread();
    for (const id of ["answer", "refusal", "source"]) {
      const card = $(id);
      if (card) { card.replaceChildren(); card.hidden = true; }
    }
    const box = $("question");
    if (box) box.focus();
  }

  document.addEventListener("DOMContentLoaded", () => {
    const button = $("new-conversation");
    if (button) button.addEventListener("click", reset);
  });

  window.policyqaConversation = { withHistory, answered, reset, turns: () => turns.slice() };
})();
