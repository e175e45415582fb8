// Trace selection for "Score Selected": kept in sessionStorage, so it survives
// paging and filtering (htmx swaps the table) until it is scored or cleared.
(function () {
  "use strict";
  const KEY = "tracescore.selection";
  const load = () => {
    try { return new Set(JSON.parse(sessionStorage.getItem(KEY) || "[]")); }
    catch (e) { return new Set(); }
  };
  let selected = load();
  const save = () => sessionStorage.setItem(KEY, JSON.stringify([...selected]));
  const $ = (selector, root) => (root || document).querySelector(selector);
  const $$ = (selector, root) => [...(root || document).querySelectorAll(selector)];

  function render() {
    const count = selected.size;
    const counter = $("#selection-count");
    if (counter) counter.textContent = `${count} trace${count === 1 ? "" : "s"} selected`;
    const button = $("#score-selected");
    if (button) button.disabled = count === 0;
    const clear = $("#clear-selection");
    if (clear) clear.hidden = count === 0;
    const boxes = $$(".select-trace");
    boxes.forEach((box) => { box.checked = selected.has(box.value); });
    const all = $("#select-page");
    if (all) {
      const checked = boxes.filter((b) => b.checked).length;
      all.checked = boxes.length > 0 && checked === boxes.length;
      all.indeterminate = checked > 0 && checked < boxes.length;
    }
  }

  document.addEventListener("change", (event) => {
    const target = event.target;
    if (target.matches(".select-trace")) {
      if (target.checked) selected.add(target.value); else selected.delete(target.value);
    } else if (target.matches("#select-page")) {
      $$(".select-trace").forEach((box) => {
        if (target.checked) selected.add(box.value); else selected.delete(box.value);
      });
    } else {
      return;
    }
    save();
    render();
  });

  document.addEventListener("click", (event) => {
    if (event.target.matches("#clear-selection")) {
      selected.clear(); save(); render();
    }
    if (event.target.matches(".close-modal")) {
      $("#score-modal").close();
    }
  });

  // Spans picked on a trace's page, for "Score spans" (kept on the page only).
  const pickedSpans = () => $$(".select-span").filter((box) => box.checked).map((box) => box.value);
  function renderSpans() {
    const button = $("#score-spans");
    if (!button) return;
    const count = pickedSpans().length;
    button.disabled = count === 0;
    const counter = $("#span-selection-count");
    if (counter) counter.textContent = count ? `${count} span${count === 1 ? "" : "s"} selected` : "";
  }
  document.addEventListener("change", (event) => {
    if (event.target.matches(".select-span")) renderSpans();
  });

  // What the open modal scores: the trace list's selection, or the picked spans.
  let openedFor = "traces";
  function selectionJSON() {
    if (openedFor === "spans") {
      const traceId = $(".waterfall").dataset.traceId;
      return JSON.stringify({ targets: pickedSpans().map((spanId) => ({ traceId, spanId })) });
    }
    return JSON.stringify({ traceIds: [...selected] });
  }

  // The modal's form carries the selection as one JSON field (however many
  // traces: Django caps a form at 1,000 fields); the server echoes it back
  // when it re-renders the modal.
  document.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target.id === "modal-body") {
      const holder = $("#batch-selection");
      if (holder && !holder.value) holder.value = selectionJSON();
      const dialog = $("#score-modal");
      if (!dialog.open) dialog.showModal();
    }
    render();
  });

  document.body.addEventListener("batchStarted", (event) => {
    const { progressUrl, mode } = event.detail;
    if (mode === "spans") {
      $$(".select-span").forEach((box) => { box.checked = false; });
      renderSpans();
      const scores = $("#scores");
      if (scores) htmx.ajax("GET", `${window.location.pathname}?part=scores`, { target: "#scores" });
    } else {
      selected.clear(); save(); render();
    }
    const progress = $("#batch-progress");
    if (progress) {
      const slot = document.createElement("div");
      progress.prepend(slot);
      htmx.ajax("GET", `${progressUrl}?poll=1`, { target: slot, swap: "outerHTML" });
    }
    setTimeout(() => { const dialog = $("#score-modal"); if (dialog.open) dialog.close(); }, 1500);
  });

  // On a trace's page, a finished batch shows its badges on the spans: reload
  // the page (the URL keeps the selected span).
  document.body.addEventListener("batchFinished", () => {
    if ($(".waterfall")) window.location.reload();
  });

  // The modal asks for the selection's size (sent here, not by hx-vals "js:", which needs eval).
  document.addEventListener("htmx:configRequest", (event) => {
    const id = event.detail.elt.id;
    if (id === "score-selected") {
      openedFor = "traces";
      event.detail.parameters.count = selected.size;
    } else if (id === "score-spans") {
      openedFor = "spans";
      event.detail.parameters.count = pickedSpans().length;
    }
  });

  // Let htmx swap 4xx answers (form errors in the modal) and a 503 (the task
  // queue is away: the modal says so) instead of dropping them.
  htmx.config.responseHandling = [
    { code: "204", swap: false },
    { code: "[23]..", swap: true },
    { code: "4..", swap: true, error: false },
    { code: "503", swap: true, error: false },
    { code: "...", swap: false, error: true },
  ];

  window.tracescore = { selectedCount: () => selected.size, spanCount: () => pickedSpans().length };
  render();
  renderSpans();
})();
