// policyqa web pages, the DOM helpers every page script shares (loaded first; each script takes what it needs
// from window.policyqaDom). Text from the API only ever becomes text nodes: `el` never sets innerHTML.
"use strict";

(() => {
  /** Build an element. attrs: {class, text, ...attributes}; children: nodes or strings (→ text nodes). */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    node.append(...children.filter((c) => c !== null && c !== undefined && c !== ""));
    return node;
  }

  const $ = (id) => document.getElementById(id);

  window.policyqaDom = Object.freeze({ el, $ });
})();
