// policyqa web page: ask a question, read the cited answer, check each citation against its source.
//
// Every string that comes from the API is put into the page as a text node (el() / append()), never
// through innerHTML, so article text and error messages can never inject markup.
"use strict";

(() => {
  const NETWORK_ERROR = "无法连接服务，请稍后再试";
  const REASONS = {
    no_evidence: "所给文档未提及",
    low_confidence: "证据不足，未作回答",
    out_of_scope: "超出本资料库范围",
    no_regulation_for_place: "资料库中没有该地的条例",
    no_such_version: "资料库中没有所问的版本",
    needs_place: "各地规定不同，请说明是哪个地方",
  };
  const CONTEXT_CHARS = 150; // context shown either side of a quote found in the whole document
  const SNIPPET_CHARS = 120; // length of a nearest-passage preview in the refusal view

  const { el, $ } = window.policyqaDom; // dom.js
  const form = $("ask-form");
  const question = $("question");
  const askButton = $("ask-button");
  const answerModeSelect = $("answer-mode");
  const statusLine = $("status");
  const errorBox = $("error");
  const answerCard = $("answer");
  const sourceCard = $("source");
  const refusalCard = $("refusal");
  const askView = $("ask-view");
  const docsView = $("docs-view");
  const docList = $("doc-list");
  const docDetail = $("doc-detail");
  const docsError = $("docs-error");
  const docsStatus = $("docs-status");
  const readiness = $("readiness");
  const uploadForm = $("upload-form");
  const uploadButton = $("upload-button");
  const uploadResult = $("upload-result");
  const uploadError = $("upload-error");
  const READY_POLL_MS = 2000;
  const LIST_POLL_MS = 3000; // while a document is being indexed, the list is read again this often
  const FORMAT_NAMES = { pdf: "PDF", docx: "Word", doc: "Word", wordxml: "Word", html: "网页", text: "文本" };

  // ---- small DOM helpers (el and $ come from dom.js) -----------------------------------------------

  const show = (node, visible = true) => { node.hidden = !visible; };

  /** "日期 · 来源" style meta line from the non-empty parts. */
  const metaLine = (...parts) => parts.filter((p) => p !== null && p !== undefined && p !== "").join(" · ");

  const sectionPath = (section) => (Array.isArray(section) ? section.filter(Boolean).join(" / ") : "");

  /** Where a citation's quote is in the uploaded original: "原文第 3 页", "原文第 3–4 页" or "原文章节：A / B". */
  function originLabel(origin) {
    if (!origin || typeof origin !== "object") return "";
    const pages = origin.pages;
    if (Array.isArray(pages) && pages.length === 2 && pages.every(Number.isInteger)) {
      return `原文第 ${pages[0]}–${pages[1]} 页`;
    }
    if (Number.isInteger(origin.page)) return `原文第 ${origin.page} 页`;
    const trail = sectionPath(origin.section);
    return trail ? `原文章节：${trail}` : "";
  }

  /** A link to the document's stored original file (only this server's own URL), at the cited page for a PDF. */
  function originalLink(doc, origin) {
    const original = doc && doc.original;
    if (!original || typeof original.url !== "string" || !original.url.startsWith("/v1/documents/")) return null;
    let href = original.url;
    if (original.format === "pdf" && origin && Number.isInteger(origin.page)) href += `#page=${origin.page}`;
    const kind = FORMAT_NAMES[original.format] || String(original.format || "");
    return el("a", { class: "btn btn-quiet original-link", href, target: "_blank", rel: "noopener noreferrer",
      text: `查看原文件（${kind}）` });
  }

  /** The policy metadata a document has (发文字号, 发文机关, dates) as a <dl>, or null when it has none. */
  function policyFacts(doc, fields) {
    if (!doc) return null;
    const facts = el("dl", { class: "doc-facts policy-facts" });
    for (const [key, label] of fields) {
      const value = doc[key];
      if (typeof value === "string" && value) facts.append(el("dt", { text: label }), el("dd", { text: value }));
    }
    return facts.childElementCount ? facts : null;
  }
  // A regulation's dates: 通过 (passed), 批准 (approved), 修改 (latest revision), 公布 (published), 施行 (in force).
  const CARD_FACTS = [["doc_number", "发文字号"], ["issuer", "发文机关"], ["written_date", "成文日期"],
    ["adopted_date", "通过日期"], ["approved_date", "批准日期"], ["revised_date", "修改日期"],
    ["published_date", "公布日期"], ["effective_date", "施行日期"]];
  const DETAIL_FACTS = [["doc_number", "发文字号"], ["issuer", "发文机关"], ["place", "所属地方"],
    ["province", "所属省份"], ["version", "版本"], ["written_date", "成文日期"], ["adopted_date", "通过日期"],
    ["adopted_by", "通过会议"], ["approved_date", "批准日期"], ["approved_by", "批准会议"],
    ["revisions", "修改记录"], ["published_date", "公布日期"], ["effective_date", "施行日期"],
    ["validity", "有效期"], ["corrected", "信息更正于"]];

  /** "已被新版本取代" with a link to the current version, or null when the document is current. */
  function supersededNote(doc) {
    if (!doc || typeof doc.superseded_by !== "string" || !doc.superseded_by) return null;
    return el("p", { class: "hint superseded" }, "已被新版本取代（superseded）：",
      el("a", { href: `#docs/${encodeURIComponent(doc.superseded_by)}`, text: "查看现行版本" }));
  }

  // ---- API ---------------------------------------------------------------------------------------

  class ApiError extends Error {
    constructor(message, code) {
      super(message);
      this.code = code; // the API's error code, when the server sent one
    }
  }

  /** The API's messages read "中文 / English"; the page shows the Chinese half. */
  function chinesePart(message) {
    const text = String(message);
    const cut = text.indexOf(" / ");
    return cut > 0 ? text.slice(0, cut) : text;
  }

  async function api(path, options = {}) {
    let response;
    try {
      response = await fetch(path, { ...options, headers: { Accept: "application/json", ...options.headers } });
    } catch {
      throw new ApiError(NETWORK_ERROR); // fetch only rejects when no HTTP response arrived at all
    }
    let data = null;
    try {
      data = await response.json();
    } catch {
      data = null; // e.g. an HTML error page from a proxy
    }
    if (!response.ok) {
      const message = data && data.error && data.error.message;
      throw new ApiError(message ? chinesePart(message) : `服务出错（HTTP ${response.status}），请稍后再试`,
        data && data.error ? data.error.code : undefined);
    }
    if (data === null || typeof data !== "object") throw new ApiError("服务返回了无法识别的内容，请稍后再试");
    return data;
  }

  // One request per document; a failed one is forgotten so that the next click retries.
  const documentCache = new Map();
  function getDocument(docId) {
    if (!documentCache.has(docId)) {
      const pending = api(`/v1/documents/${encodeURIComponent(docId)}`);
      pending.catch(() => documentCache.delete(docId));
      documentCache.set(docId, pending);
    }
    return documentCache.get(docId);
  }

  /** Show an error in plain words; unexpected (non-API) errors are page bugs and go to the console. */
  function showError(box, err) {
    if (!(err instanceof ApiError)) console.error(err);
    box.textContent = err instanceof ApiError ? err.message : "页面出错，请刷新后重试";
    show(box);
  }

  // ---- readiness: while the service builds its first index, say how far it has got -----------------

  let watchingReadiness = false;

  // /readyz's stage (service/api/state.py STAGES), each with its own progress
  const STAGE_TEXT = {
    starting: "服务正在启动…",
    preparing_model: "正在准备模型（首次启动约需半分钟），完成后建立索引。",
    loading_index: "正在加载索引…",
    assembling_reader: "正在组装阅读模型（首次启动约需十几秒）…",
    warming_up: "正在预热模型，马上就可以提问…",
  };

  function readinessText(r) {
    if (r.state === "failed" || r.stage === "failed") return "索引建立失败，请联系管理员查看服务日志。";
    if (r.stage === "building_index") {
      const done = Number(r.done) || 0;
      const total = Number(r.total) || 0;
      return total > 0 ? `正在建立索引：已处理 ${done} / ${total} 段（${Math.floor((100 * done) / total)}%），完成后即可提问。`
        : "正在建立索引，完成后即可提问。";
    }
    return STAGE_TEXT[r.stage] || STAGE_TEXT.starting;
  }

  async function watchReadiness() {
    if (watchingReadiness) return;
    watchingReadiness = true;
    try {
      for (;;) {
        let response = null;
        let data = null;
        try {
          response = await fetch("/readyz", { headers: { Accept: "application/json" } });
          data = await response.json();
        } catch {
          data = null;
        }
        if (response && response.ok) break;
        readiness.textContent = data && data.state ? readinessText(data) : NETWORK_ERROR;
        show(readiness);
        await new Promise((resolve) => setTimeout(resolve, READY_POLL_MS));
      }
      show(readiness, false);
    } finally {
      watchingReadiness = false;
    }
  }

  // ---- asking ------------------------------------------------------------------------------------

  let current = null; // the last /v1/ask response shown
  let busy = false;
  let sourceRequest = 0; // bumps on every citation click, so a slow document fetch cannot overwrite a newer one

  function setBusy(on) {
    busy = on;
    askButton.disabled = on;
    form.setAttribute("aria-busy", on ? "true" : "false");
    show(statusLine, on);
  }

  function clearResults() {
    current = null;
    sourceRequest += 1;
    show(errorBox, false);
    for (const card of [answerCard, sourceCard, refusalCard]) {
      card.replaceChildren();
      show(card, false);
    }
  }

  async function ask() {
    if (busy) return;
    const text = question.value.trim();
    if (!text) {
      clearResults();
      showError(errorBox, new ApiError("请输入问题"));
      question.focus();
      return;
    }
    clearResults();
    setBusy(true);
    try {
      const mode = answerModeSelect ? answerModeSelect.value : "extractive";
      const data = mode === "extractive"
        ? await api("/v1/ask", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(withHistory({ question: text, k: 5, answer_mode: mode })),
        })
        : await askStreaming(text, mode);
      current = data;
      if (data.refused) renderRefusal(data);
      else renderAnswer(data);
      answered(data, text);
    } catch (err) {
      showError(errorBox, err);
      if (err instanceof ApiError && err.code === "not_ready") watchReadiness();
    } finally {
      setBusy(false);
      // a disabled button drops focus to <body>; put it back where typing continues
      if (document.activeElement === document.body || document.activeElement === askButton) question.focus();
    }
  }

  /**
   * Ask with "stream": true and show the LLM's text as it arrives (Server-Sent Events: passages, delta…,
   * answer); resolves to the final answer object, which replaces the streamed text once verified.
   */
  async function askStreaming(text, mode) {
    let response;
    try {
      response = await fetch("/v1/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
        body: JSON.stringify(withHistory({ question: text, k: 5, answer_mode: mode, stream: true })),
      });
    } catch {
      throw new ApiError(NETWORK_ERROR);
    }
    if (!response.ok || !response.body) {
      let data = null;
      try { data = await response.json(); } catch { data = null; }
      const message = data && data.error && data.error.message;
      throw new ApiError(message ? chinesePart(message) : `服务出错（HTTP ${response.status}），请稍后再试`,
        data && data.error ? data.error.code : undefined);
    }
    const live = el("p", { class: "answer-text streaming", id: "answer-live" });
    answerCard.replaceChildren(el("div", { class: "answer-head" },
      el("h2", { class: "card-title", text: "回答（生成中，核对出处后显示引用）" })), live);
    show(answerCard);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let final = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const kind = (block.match(/^event: (.*)$/m) || [])[1];
        const payload = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
        if (!kind || !payload) continue;
        const data = JSON.parse(payload);
        if (kind === "delta") live.append(String(data.text || ""));
        else if (kind === "answer") final = data;
        else if (kind === "error") {
          answerCard.replaceChildren();
          show(answerCard, false);
          throw new ApiError(chinesePart((data.error && data.error.message) || "服务出错，请稍后再试"),
            data.error && data.error.code);
        }
      }
    }
    answerCard.replaceChildren();
    show(answerCard, false);
    if (!final) throw new ApiError("回答中断，请重试");
    return final;
  }

  // the conversation (conversation.js): earlier turns go with each question, each answer joins the thread
  const withHistory = (body) => (window.policyqaConversation ? window.policyqaConversation.withHistory(body) : body);
  const answered = (data, text) => {
    if (window.policyqaConversation) window.policyqaConversation.answered(data, text, data.refused ? refusalCard : answerCard);
  };

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    ask();
  });

  question.addEventListener("keydown", (event) => {
    // Enter asks, Shift+Enter is a newline. While a Chinese IME is composing, Enter only confirms the
    // candidate (isComposing; keyCode 229 covers browsers that report composition that way).
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) return;
    event.preventDefault();
    ask();
  });

  // ---- answer view -------------------------------------------------------------------------------

  const FALLBACK_ZH = {
    llm_not_configured: "未配置大模型",
    llm_unavailable: "大模型服务无法连接",
    llm_timeout: "大模型超时",
    llm_rate_limited: "大模型服务繁忙",
    llm_server_error: "大模型服务出错",
    llm_malformed: "大模型输出无法解析",
    llm_no_answer: "大模型认为资料不能回答",
    llm_unverified: "大模型的陈述都未通过出处核对",
  };
  const DROPPED_ZH = {
    empty: "空陈述",
    not_a_statement: "不是陈述",
    bad_passage: "资料编号不存在",
    quote_not_in_passage: "引文不在资料中",
    unsupported_number: "数字或日期不在资料中",
    unsupported_name: "名称或地名不在资料中",
  };

  function markerButton(n) {
    const button = el("button", {
      type: "button", class: "cite-marker", "data-n": n, "aria-controls": "source",
      "aria-label": `查看引用 ${n} 的原文`, text: `[${n}]`,
    });
    button.addEventListener("click", () => showSource(n));
    return button;
  }

  /**
   * The answer text as nodes: "[n]" markers that match a citation become buttons, and the first
   * occurrence of the short answer (outside markers) is wrapped in <mark class="short">.
   */
  function answerNodes(answer, citations, shortAnswer) {
    const known = new Set(citations.map((c) => c.n));
    const nodes = [];
    let marked = !shortAnswer;
    const pushText = (text) => {
      if (!text) return;
      const at = marked ? -1 : text.indexOf(shortAnswer);
      if (at < 0) {
        nodes.push(text);
        return;
      }
      marked = true;
      nodes.push(text.slice(0, at), el("mark", { class: "short", text: shortAnswer }),
        text.slice(at + shortAnswer.length));
    };
    let last = 0;
    for (const match of answer.matchAll(/\[(\d+)\]/g)) {
      pushText(answer.slice(last, match.index));
      const n = Number(match[1]);
      nodes.push(known.has(n) ? markerButton(n) : match[0]);
      last = match.index + match[0].length;
    }
    pushText(answer.slice(last));
    return nodes.filter((node) => node !== "");
  }

  // Which regulations the answer could come from: the place named (or the default one), the version in force
  function scopeText(scope) {
    if (!scope) return "";
    const parts = [];
    if (Array.isArray(scope.differs_by_place) && scope.differs_by_place.length) {
      parts.push(`问题没有说明地方，各地规定不同，以下列出${scope.differs_by_place.join("、")}的规定`);
    } else if (Array.isArray(scope.places) && scope.places.length) {
      parts.push(`依据${scope.places.join("、")}的资料${scope.default_place ? "（默认地区）" : ""}`);
    }
    if (Array.isArray(scope.versions)) parts.push(...scope.versions);
    return parts.join("；");
  }

  function renderAnswer(data) {
    const citations = Array.isArray(data.citations) ? data.citations : [];
    const shortAnswer = typeof data.short_answer === "string" && data.short_answer.trim() ? data.short_answer : null;

    const head = el("div", { class: "answer-head" }, el("h2", { class: "card-title", text: "回答" }));
    if (shortAnswer) {
      head.append(el("p", { class: "short-answer" }, "简答：", el("strong", { text: shortAnswer })));
    }
    answerCard.append(head);

    const scopeNote = scopeText(data.scope);
    if (scopeNote) answerCard.append(el("p", { class: "scope-note", role: "note", text: scopeNote }));

    const fallback = FALLBACK_ZH[data.fallback_reason];
    if (fallback) answerCard.append(el("p", { class: "fallback-note", role: "note", text: `${fallback}，以下为摘录原文的回答` }));
    if (data.conflict) {
      answerCard.append(el("p", { class: "conflict-note", role: "note" },
        el("span", { class: "icon", "aria-hidden": "true", text: "⚠" }), " 不同报道说法不一，请核对日期"));
    }

    answerCard.append(el("p", { class: "answer-text" },
      ...answerNodes(String(data.answer || ""), citations, shortAnswer)));

    const facts = [];
    if (typeof data.confidence === "number") facts.push(`置信度 ${Math.round(data.confidence * 100)}%`);
    const total = data.timings_ms && data.timings_ms.total;
    if (typeof total === "number") facts.push(`用时 ${(total / 1000).toFixed(2)} 秒`);
    if (facts.length) answerCard.append(el("p", { class: "answer-meta", text: facts.join(" · ") }));

    const statements = Array.isArray(data.statements) ? data.statements : [];
    if (statements.length) {
      const list = el("ul", { class: "statement-list" });
      for (const st of statements) {
        const why = st.verified ? "已核对：引文在所引资料中" : `未通过核对（${DROPPED_ZH[st.dropped] || st.dropped}），未采用`;
        list.append(el("li", { class: st.verified ? "verified" : "dropped", title: why, text: String(st.text || "") }));
      }
      answerCard.append(el("h3", { class: "sub-title", text: "大模型的陈述" }), list);
    }

    if (citations.length) {
      const list = el("ol", { class: "citation-list" });
      for (const c of citations) {
        const item = el("button", { type: "button", class: "citation-item", "data-n": c.n, "aria-controls": "source" },
          el("span", { class: "citation-n", text: `[${c.n}]` }),
          el("span", { class: "citation-body" },
            el("span", { class: "citation-title", text: c.title || c.doc_id }),
            el("span", { class: "citation-meta", text: metaLine(c.article, c.date, sectionPath(c.section), originLabel(c.origin)) }),
            el("span", { class: "citation-quote", text: `“${c.quote || ""}”` })));
        item.addEventListener("click", () => showSource(c.n));
        list.append(el("li", {}, item));
      }
      answerCard.append(el("h3", { class: "sub-title", text: "引用" }), list);
    }
    show(answerCard);
  }

  // ---- citation source ---------------------------------------------------------------------------

  /**
   * Where citation c's quote sits, as {text, start, end, clippedBefore, clippedAfter, note}.
   * First choice: the passage returned with the answer (same chunk_id); citation offsets index the
   * document's cleaned text, the passage's start says where the chunk begins in that same text.
   * If that does not reproduce the quote exactly, fall back to the whole document with some context.
   */
  async function locateQuote(c, passages) {
    const p = passages.find((candidate) => candidate.chunk_id === c.chunk_id);
    if (p && typeof p.text === "string" && Number.isInteger(p.start) && Number.isInteger(c.start)) {
      const start = c.start - p.start;
      const end = c.end - p.start;
      if (start >= 0 && start <= end && end <= p.text.length && p.text.slice(start, end) === c.quote) {
        return { text: p.text, start, end, clippedBefore: false, clippedAfter: false, note: null };
      }
    }

    const doc = await getDocument(c.doc_id);
    const text = String(doc.text || "");
    let start = c.start;
    let end = c.end;
    let note = null;
    const offsetsHold = Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start <= end
      && end <= text.length && text.slice(start, end) === c.quote;
    if (!offsetsHold) {
      const at = c.quote ? text.indexOf(c.quote) : -1;
      if (at < 0) return null;
      start = at;
      end = at + c.quote.length;
      note = "引用位置与原文偏移不一致，已按引文内容定位。";
    }
    const from = Math.max(0, start - CONTEXT_CHARS);
    const to = Math.min(text.length, end + CONTEXT_CHARS);
    return {
      text: text.slice(from, to), start: start - from, end: end - from,
      clippedBefore: from > 0, clippedAfter: to < text.length, note,
    };
  }

  function markActiveCitation(n) {
    for (const node of answerCard.querySelectorAll(".cite-marker, .citation-item")) {
      const active = Number(node.dataset.n) === n;
      node.classList.toggle("active", active);
      if (active) node.setAttribute("aria-current", "true");
      else node.removeAttribute("aria-current");
    }
  }

  async function showSource(n) {
    const data = current;
    const c = data && (data.citations || []).find((candidate) => candidate.n === n);
    if (!c) return;
    const request = ++sourceRequest;
    markActiveCitation(n);
    // the document's metadata and original file; the card still shows the quote if this fails
    const docRequest = getDocument(c.doc_id).catch(() => null);

    const where = originLabel(c.origin);
    const header = el("div", { class: "source-head" },
      el("h2", { class: "card-title" }, `引用 [${n}] `, el("span", { class: "source-title", text: c.title || c.doc_id })),
      el("p", { class: "source-meta" }, metaLine(c.article, c.date, sectionPath(c.section))),
      where ? el("p", { class: "source-origin", text: where }) : null);
    sourceCard.replaceChildren(header, el("p", { class: "status" },
      el("span", { class: "spinner", "aria-hidden": "true" }), "正在加载原文…"));
    show(sourceCard);
    sourceCard.scrollIntoView({ block: "nearest" });

    let found;
    try {
      found = await locateQuote(c, Array.isArray(data.passages) ? data.passages : []);
    } catch (err) {
      if (request !== sourceRequest) return;
      sourceCard.replaceChildren(header);
      const box = el("p", { class: "error", role: "alert" });
      sourceCard.append(box);
      showError(box, err);
      return;
    }
    const doc = await docRequest;
    if (request !== sourceRequest) return; // another citation was clicked meanwhile

    const body = [header];
    const facts = policyFacts(doc, CARD_FACTS);
    if (facts) header.append(facts);
    const superseded = supersededNote(doc);
    if (superseded) header.append(superseded);
    if (found) {
      const passage = el("p", { class: "passage" });
      if (found.clippedBefore) passage.append("…");
      passage.append(found.text.slice(0, found.start),
        el("mark", { class: "quote", text: found.text.slice(found.start, found.end) }),
        found.text.slice(found.end));
      if (found.clippedAfter) passage.append("…");
      body.push(passage);
      if (found.note) body.push(el("p", { class: "hint", text: found.note }));
    } else {
      body.push(el("p", { class: "hint", text: "未能在原文中找到这段引文，引文如下：" }),
        el("blockquote", { class: "passage", text: c.quote || "" }));
    }

    const close = el("button", { type: "button", class: "btn btn-quiet", text: "关闭" });
    close.addEventListener("click", () => {
      sourceRequest += 1;
      show(sourceCard, false);
      markActiveCitation(null);
      const marker = answerCard.querySelector(`.cite-marker[data-n="${n}"]`);
      if (marker) marker.focus();
    });
    body.push(el("p", { class: "actions" },
      el("a", { class: "btn btn-quiet", href: `#docs/${encodeURIComponent(c.doc_id)}`, text: "查看全文" }),
      originalLink(doc, c.origin), close));

    sourceCard.replaceChildren(...body);
    sourceCard.focus({ preventScroll: true }); // keyboard users land on the passage they asked for
    sourceCard.scrollIntoView({ block: "nearest" });
  }

  // ---- refusal view ------------------------------------------------------------------------------

  function renderRefusal(data) {
    const reason = REASONS[data.reason] || "资料不足，未作回答";
    // The answer text says what exactly is missing ("…：找到的段落没有关于“佛山”的内容。以下是…"): show it.
    const detail = (String(data.answer || "").match(/：([^。]+)。/) || [])[1];
    refusalCard.append(
      el("h2", { class: "card-title", text: "资料中没有找到可靠答案" }),
      el("p", { class: "refusal-reason" }, "原因：", el("strong", { text: reason })));
    if (detail && detail !== reason) {
      refusalCard.append(el("p", { class: "refusal-detail", text: detail }));
    }

    const passages = Array.isArray(data.passages) ? data.passages : [];
    if (!passages.length) {
      refusalCard.append(el("p", { class: "hint", text: "没有找到相关段落。" }));
    } else {
      const list = el("ol", { class: "nearest-list" });
      for (const p of passages) {
        const text = String(p.text || "");
        const snippet = text.length > SNIPPET_CHARS ? `${text.slice(0, SNIPPET_CHARS)}…` : text;
        const item = el("li", { class: "nearest" },
          el("p", { class: "nearest-title", text: p.title || p.doc_id }),
          el("p", { class: "nearest-meta", text: metaLine(p.date, sectionPath(p.section)) }),
          el("p", { class: "nearest-snippet", text: snippet }));
        if (text.length > SNIPPET_CHARS) {
          item.append(el("details", {}, el("summary", { text: "展开全文" }), el("p", { class: "passage", text })));
        }
        list.append(item);
      }
      refusalCard.append(el("h3", { class: "sub-title", text: "最接近的段落" }), list);
    }
    show(refusalCard);
  }

  // ---- documents view ----------------------------------------------------------------------------

  let docsLoaded = false;
  let lastDocId = null; // to return focus to the document just closed
  let listTimer = null;

  /** Read the list again in a while (a document is being indexed): its 索引中 tag goes when it is searchable. */
  function refreshListSoon() {
    if (listTimer) return;
    listTimer = setTimeout(() => {
      listTimer = null;
      docsLoaded = false; // a later visit reads it again in any case
      if (!docsView.hidden && docDetail.hidden) loadDocumentList({ quiet: true });
    }, LIST_POLL_MS);
  }

  async function loadDocumentList({ quiet = false } = {}) {
    if (docsLoaded) return;
    show(docsError, false);
    if (!quiet) show(docsStatus);
    try {
      const data = await api("/v1/documents");
      const docs = Array.isArray(data.documents) ? data.documents : [];
      const focused = document.activeElement && document.activeElement.dataset
        ? document.activeElement.dataset.docId : undefined;
      docList.replaceChildren(...docs.map((d) => {
        const kind = d.original && FORMAT_NAMES[d.original.format];
        const button = el("button", { type: "button", class: "doc-item", "data-doc-id": d.doc_id },
          el("span", { class: "doc-title", text: d.title || d.doc_id }),
          el("span", { class: "doc-meta", text: metaLine(d.doc_number, d.issuer, d.date, d.source) }),
          kind ? el("span", { class: "tag tag-format", text: kind }) : null,
          d.superseded_by ? el("span", { class: "tag", text: "已被取代" }) : null,
          d.state === "indexing" ? el("span", { class: "tag", text: "索引中" }) : null,
          d.state === "removing" ? el("span", { class: "tag", text: "删除中" }) : null);
        button.addEventListener("click", () => { location.hash = `#docs/${encodeURIComponent(d.doc_id)}`; });
        return el("li", {}, button);
      }));
      if (!docs.length) docList.append(el("li", { class: "hint", text: "资料库中还没有文档。" }));
      if (focused) {
        const again = [...docList.querySelectorAll(".doc-item")].find((b) => b.dataset.docId === focused);
        if (again) again.focus();
      }
      docsLoaded = true;
      if (docs.some((d) => d.state === "indexing" || d.state === "removing")) refreshListSoon();
    } catch (err) {
      showError(docsError, err);
    } finally {
      show(docsStatus, false);
    }
  }

  // ---- upload (admin): the token stays in this page's memory (the field), never in storage ------------

  async function upload() {
    const token = $("upload-token").value.trim();
    const fileInput = $("upload-file");
    const file = fileInput.files && fileInput.files[0];
    show(uploadResult, false);
    show(uploadError, false);
    if (!token) {
      showError(uploadError, new ApiError("请输入管理员令牌"));
      $("upload-token").focus();
      return;
    }
    if (!file) {
      showError(uploadError, new ApiError("请选择要上传的文件"));
      fileInput.focus();
      return;
    }
    const body = new FormData();
    body.append("file", file, file.name);
    for (const field of ["title", "date", "source"]) {
      const value = $(`upload-${field}`).value.trim();
      if (value) body.append(field, value);
    }
    uploadButton.disabled = true;
    uploadForm.setAttribute("aria-busy", "true");
    try {
      const created = await api("/v1/documents", {
        method: "POST", headers: { Authorization: `Bearer ${token}` }, body,
      });
      documentCache.delete(created.doc_id);
      uploadResult.replaceChildren("已上传：",
        el("a", { href: `#docs/${encodeURIComponent(created.doc_id)}`, text: created.title || created.doc_id }),
        `（编号 ${created.doc_id}）。建立索引后即可提问。`);
      show(uploadResult);
      fileInput.value = "";
      for (const field of ["title", "date", "source"]) $(`upload-${field}`).value = "";
      docsLoaded = false;
      await loadDocumentList({ quiet: true });
    } catch (err) {
      showError(uploadError, err);
    } finally {
      uploadButton.disabled = false;
      uploadForm.setAttribute("aria-busy", "false");
    }
  }

  uploadForm.addEventListener("submit", (event) => {
    event.preventDefault();
    upload();
  });

  async function showDocument(docId) {
    lastDocId = docId;
    show(docList, false);
    show(docsError, false);
    const back = el("a", { class: "btn btn-quiet back", href: "#docs", text: "← 返回文档列表" });
    docDetail.replaceChildren(back, el("p", { class: "status" },
      el("span", { class: "spinner", "aria-hidden": "true" }), "正在加载…"));
    show(docDetail);
    try {
      const doc = await getDocument(docId);
      if (lastDocId !== docId) return; // the reader moved on
      const facts = el("dl", { class: "doc-facts" });
      const fact = (label, value) => { if (value) facts.append(el("dt", { text: label }), el("dd", {}, value)); };
      fact("日期", doc.date ? `${doc.date}${doc.date_inferred ? "（据正文推断）" : ""}` : "");
      fact("来源", doc.source);
      fact("地区", doc.region);
      for (const [key, label] of DETAIL_FACTS) fact(label, typeof doc[key] === "string" ? doc[key] : "");
      const original = originalLink(doc, null);
      if (original) {
        original.textContent = String(doc.original.name || "") || original.textContent;
        original.className = "";
        fact(`原始文件（${FORMAT_NAMES[doc.original.format] || doc.original.format}）`, original);
      }
      // only http(s) links become clickable: a "javascript:" URL from a document must not run
      if (typeof doc.url === "string" && /^https?:\/\//i.test(doc.url)) {
        fact("原文链接", el("a", { href: doc.url, rel: "noopener noreferrer", target: "_blank", text: doc.url }));
      }
      docDetail.replaceChildren(back,
        el("h3", { class: "doc-heading", text: doc.title || doc.doc_id }), facts, supersededNote(doc) || "",
        el("div", { class: "doc-text", text: String(doc.text || "") }));
      docDetail.focus({ preventScroll: true });
    } catch (err) {
      if (lastDocId !== docId) return;
      const box = el("p", { class: "error", role: "alert" });
      docDetail.replaceChildren(back, box);
      showError(box, err);
    }
  }

  // ---- views (hash routes: #ask, #docs, #docs/<doc_id>) ------------------------------------------

  function route() {
    let hash = "";
    try {
      hash = decodeURIComponent(location.hash.slice(1));
    } catch {
      hash = ""; // a malformed %-sequence: fall back to the question view
    }
    const docs = hash === "docs" || hash.startsWith("docs/");
    show(askView, !docs);
    show(docsView, docs);
    for (const [tab, active] of [[$("tab-ask"), !docs], [$("tab-docs"), docs]]) {
      if (active) tab.setAttribute("aria-current", "page");
      else tab.removeAttribute("aria-current");
    }
    document.title = docs ? "文档 · 政策问答" : "政策问答 · policyqa";

    if (!docs) return;
    const docId = hash.startsWith("docs/") ? hash.slice(5) : "";
    if (docId) {
      showDocument(docId);
      return;
    }
    loadDocumentList();
    const closed = lastDocId;
    lastDocId = null;
    show(docDetail, false);
    show(docList);
    if (closed) {
      const item = [...docList.querySelectorAll(".doc-item")].find((b) => b.dataset.docId === closed);
      if (item) item.focus();
    }
  }

  window.addEventListener("hashchange", route);
  route();
  watchReadiness();
})();
